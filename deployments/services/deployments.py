"""The environment's deployment history, written by the worker as each apply finishes."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from deployments import terraform as tf
from deployments.choices import RunStatus
from deployments.models import Deployment, DeploymentOutcome, TerraformRun, Ticket
from deployments.services.audit import audit_record


def deployment_record(
    ticket: Ticket, run: TerraformRun, applied: tf.ApplyResult | None
) -> Deployment | None:
    """Record a finished apply (succeeded or failed) as a deployment of its environment.

    Called inside the transaction that records the run's outcome, so the history and the
    run never disagree. An apply refused before Terraform ran (a stale plan, an unreadable
    plan file) changed nothing and is not a deployment.
    """
    if applied is not None and applied.stale_plan:
        return None
    if run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED) or run.finished_at is None:
        return None
    deployment = Deployment.objects.create(
        environment_id=run.environment_id,
        ticket=ticket,
        run=run,
        change_type=ticket.change_type,
        commit_sha=run.commit_sha,
        var_file=run.var_file,
        var_file_sha256=applied.var_file_sha256 if applied else "",
        plan_sha256=run.plan.plan_sha256 if run.plan_id and run.plan else "",
        state_after=applied.state_after if applied else "",
        deployed_by_id=run.requested_by_id,
        outcome=(
            DeploymentOutcome.SUCCEEDED
            if run.status == RunStatus.SUCCEEDED
            else DeploymentOutcome.FAILED
        ),
        started_at=run.started_at,
        finished_at=run.finished_at,
    )
    audit_record(
        actor="worker",
        action="deployment.record",
        ticket=ticket,
        data={
            "deployment": deployment.pk,
            "environment": ticket.environment.name,
            "commit_sha": deployment.commit_sha,
            "var_file_sha256": deployment.var_file_sha256,
            "plan_sha256": deployment.plan_sha256,
            "state_after": deployment.state_after,
            "outcome": deployment.outcome,
        },
    )
    return deployment


def deployment_monitoring_failed(
    ticket: Ticket, *, reason: str, at: dt.datetime | None = None
) -> Deployment | None:
    """Mark the ticket's latest succeeded deployment as failed in monitoring (an alarm, a
    failing health or post-apply check): it is no longer anyone's last known good."""
    deployment = (
        Deployment.objects.select_for_update()
        .filter(ticket=ticket, outcome=DeploymentOutcome.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )
    if deployment is None or deployment.monitoring_failed_at is not None:
        return deployment
    deployment.monitoring_failed_at = at or timezone.now()
    deployment.monitoring_failure = reason[:2000]
    deployment.save(update_fields=["monitoring_failed_at", "monitoring_failure"])
    audit_record(
        actor="system",
        action="deployment.monitoring_failed",
        ticket=ticket,
        data={"deployment": deployment.pk, "reason": reason[:500]},
    )
    return deployment
