"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

import socket
from typing import Any

from celery import shared_task
from django.conf import settings

from deployments import services


@shared_task(
    bind=True,
    name="deployments.tasks.run_execute",
    acks_late=False,  # an apply is never redelivered: a lost worker leaves it interrupted
    ignore_result=True,
    soft_time_limit=max(settings.TERRAFORM_APPLY_TIMEOUT, settings.TERRAFORM_PLAN_TIMEOUT) * 3
    + 600,
    time_limit=max(settings.TERRAFORM_APPLY_TIMEOUT, settings.TERRAFORM_PLAN_TIMEOUT) * 3 + 900,
)
def run_execute(self: Any, run_id: int) -> None:
    services.run_execute(run_id=run_id, worker=self.request.hostname or socket.gethostname())


@shared_task(name="deployments.tasks.runs_reconcile", ignore_result=True)
def runs_reconcile() -> None:
    services.runs_reconcile()


@shared_task(name="deployments.tasks.webhook_process", ignore_result=True)
def webhook_process(delivery_pk: int) -> None:
    services.webhooks.webhook_process(delivery_pk=delivery_pk)


@shared_task(name="deployments.tasks.follow_ups_remind", ignore_result=True)
def follow_ups_remind() -> None:
    services.follow_ups_remind()


@shared_task(name="deployments.tasks.schedules_run", ignore_result=True)
def schedules_run() -> None:
    """Beat: start the scheduled applies that are due (schedules are database rows)."""
    from deployments.services.schedules import schedules_run as run_schedules

    run_schedules()


@shared_task(name="deployments.tasks.idempotency_cleanup", ignore_result=True)
def idempotency_cleanup() -> None:
    """Forget Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS."""
    from deployments.services.apikeys import idempotency_cleanup as cleanup

    cleanup()


@shared_task(name="deployments.tasks.drift_checks_start", ignore_result=True)
def drift_checks_start() -> None:
    """Beat: open and dispatch each environment's due drift check."""
    from deployments.services.drift import drift_checks_start as start

    start()


@shared_task(
    name="deployments.tasks.drift_check_run",
    ignore_result=True,
    soft_time_limit=settings.TERRAFORM_PLAN_TIMEOUT * 2 + 300,
    time_limit=settings.TERRAFORM_PLAN_TIMEOUT * 2 + 600,
)
def drift_check_run(check_id: int) -> None:
    """Run one drift check (plan -detailed-exitcode of the last deployed commit)."""
    from deployments.services.drift import drift_check_run as run

    run(check_id=check_id)


@shared_task(
    bind=True,
    name="deployments.tasks.speculative_plan_run",
    acks_late=False,
    ignore_result=True,
    soft_time_limit=settings.TERRAFORM_PLAN_TIMEOUT * 2 + 300,
    time_limit=settings.TERRAFORM_PLAN_TIMEOUT * 2 + 600,
)
def speculative_plan_run(self: Any, plan_id: int) -> None:
    """Run one speculative plan (a pull request's plan-only check) on its environment's queue."""
    from deployments.services.plans import speculative_plan_run as run

    run(plan_id=plan_id, worker=self.request.hostname or socket.gethostname())


@shared_task(name="deployments.tasks.monitoring_poll", ignore_result=True)
def monitoring_poll() -> None:
    """Beat: probe CloudWatch alarms and health URLs of tickets in their monitoring period."""
    from deployments.services.monitoring import monitoring_poll as poll

    poll()


@shared_task(name="deployments.tasks.audit_verify", ignore_result=True)
def audit_verify() -> None:
    """The nightly full walk of the audit chain; the audit page shows its outcome."""
    services.audit.audit_verify_and_record(source="scheduled")


@shared_task(name="deployments.tasks.evidence_purge", ignore_result=True)
def evidence_purge() -> None:
    """Beat: delete the bytes of evidence withdrawn longer ago than the retention period."""
    services.evidence_purge()
