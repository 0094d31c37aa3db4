"""Drift detection: does each environment still match what was last deployed to it?

A beat task (``drift_checks_start``, every minute) opens a DriftCheck for each environment
whose ``drift_check_minutes`` have passed since its last one and sends it to a worker;
``drift_check_run`` runs `terraform plan -detailed-exitcode` of the environment's newest
succeeded deployment (its commit and var-file) under the environment lock, so never while
an apply of that environment runs. Exit 2 is drift: recorded with the plan's summary,
audited, and operations and DevOps Leads are told ("drift.detected").
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.choices import DriftStatus, RunKind, RunStatus
from deployments.models import (
    Deployment,
    DeploymentOutcome,
    DriftCheck,
    Environment,
    Stack,
    TerraformRun,
)
from deployments.services import notices
from deployments.services.audit import audit_record
from deployments.services.credentials import CredentialsUnavailable, run_credentials
from deployments.services.runs.spec import terraform_spec
from deployments.services.stacks import stack_lock

log = logging.getLogger(__name__)

LOG_MAX = 200_000


def drift_check_open(
    env: Environment, *, requested_by: str = "beat", stack: Stack | None = None
) -> DriftCheck:
    """Record a drift check of ``stack`` (default: Stack.default()) in ``env`` as started
    (the worker then runs it)."""
    return DriftCheck.objects.create(
        environment=env,
        stack=stack or Stack.default(),
        status=DriftStatus.RUNNING,
        requested_by=requested_by[:150],
        started_at=timezone.now(),
    )


def drift_checks_start(*, now: dt.datetime | None = None) -> list[int]:
    """Beat: open and dispatch the due drift checks; returns their ids. A check still
    running past twice the plan timeout (its worker was lost) is marked failed."""
    now = now or timezone.now()
    lost_before = now - dt.timedelta(seconds=2 * settings.TERRAFORM_PLAN_TIMEOUT + 60)
    DriftCheck.objects.filter(status=DriftStatus.RUNNING, started_at__lt=lost_before).update(
        status=DriftStatus.FAILED, error="its worker was lost", finished_at=now
    )
    started: list[int] = []
    for env in Environment.objects.filter(drift_check_minutes__gt=0):
        # Each stack deployed here is checked on its own (the default stack when none is).
        stacks = list(Stack.objects.filter(deployments__environment=env).distinct()) or [
            Stack.default()
        ]
        for stack in stacks:
            last = (
                DriftCheck.objects.filter(environment=env, stack=stack)
                .order_by("-started_at")
                .first()
            )
            if last is not None and (
                last.status == DriftStatus.RUNNING
                or now - last.started_at < dt.timedelta(minutes=env.drift_check_minutes)
            ):
                continue
            with transaction.atomic():
                check = drift_check_open(env, stack=stack)
                transaction.on_commit(_dispatcher(check.pk))
            started.append(check.pk)
    return started


def _dispatcher(check_id: int) -> Callable[[], None]:
    def dispatch() -> None:
        from deployments.tasks import drift_check_run  # tasks import services

        try:
            drift_check_run.apply_async(args=[check_id], retry=False)
        except Exception:
            log.exception("could not send drift check %s to the broker", check_id)

    return dispatch


def _finish(check: DriftCheck, status: str, **fields: Any) -> DriftCheck:
    check.status = status
    check.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(check, name, value)
    check.save()
    return check


def drift_check_run(*, check_id: int) -> DriftCheck:
    """Run one drift check (a worker task; ``check_drift`` runs it in-process)."""
    check = DriftCheck.objects.select_related("environment", "stack").get(pk=check_id)
    if check.status != DriftStatus.RUNNING or check.finished_at is not None:
        return check
    env = check.environment
    deployment = (
        Deployment.objects.filter(
            environment=env, stack=check.stack, outcome=DeploymentOutcome.SUCCEEDED
        )
        .order_by("-finished_at", "-pk")
        .first()
    )
    if deployment is None:
        return _finish(
            check, DriftStatus.SKIPPED, error=f"nothing has been deployed to {env.name} yet"
        )
    check.deployment = deployment
    check.commit_sha = deployment.commit_sha
    check.var_file = deployment.var_file
    env_lock = stack_lock(env.pk, check.stack_id)
    if not env_lock.try_acquire():
        return _finish(check, DriftStatus.SKIPPED, error=f"an apply of {env.name} is running")
    try:
        applying = TerraformRun.objects.filter(
            environment=env,
            stack=check.stack,
            kind=RunKind.APPLY,
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        ).exists()
        if applying:
            return _finish(
                check, DriftStatus.SKIPPED, error=f"an apply of {env.name} is queued or running"
            )
        lines = _Tail(LOG_MAX)
        try:
            # A drift check only reads: the environment's plan credentials.
            granted = run_credentials(
                env,
                phase=policy.PLAN_PHASE,
                subject=f"drift{check.pk}-{env.name}",
                timeout=settings.TERRAFORM_PLAN_TIMEOUT,
            )
            lines.append(granted.description)
            spec = terraform_spec(
                environment=env,
                stack=check.stack,
                commit_sha=deployment.commit_sha,
                workspace=env.workspace,
                var_file=deployment.var_file,
                timeout=settings.TERRAFORM_PLAN_TIMEOUT,
                credentials_env=granted.env,
            )
            result = tf.drift(spec, lines.append)
        except tf.TerraformNotFound as exc:
            result = tf.DriftResult(exit_code=127, error=str(exc))
        except CredentialsUnavailable as exc:
            lines.append(f"error: {exc.message}")
            result = tf.DriftResult(exit_code=1, error=exc.message)
    finally:
        env_lock.release()
    text = lines.text()
    if result.error:
        return _finish(
            check, DriftStatus.FAILED, exit_code=result.exit_code, error=result.error, log=text
        )
    if not result.drifted:
        return _finish(check, DriftStatus.NO_DRIFT, exit_code=0, log=text)
    with transaction.atomic():
        _finish(check, DriftStatus.DRIFTED, exit_code=2, summary=result.summary, log=text)
        _drift_detected(check, deployment)
    return check


class _Tail:
    """The last ``limit`` characters of a check's output, however much Terraform prints."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: collections.deque[str] = collections.deque()
        self.size = 0

    def append(self, line: str) -> None:
        line = line[-self.limit :]
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.limit and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self.lines)[-self.limit :]


def _drift_detected(check: DriftCheck, deployment: Deployment) -> None:
    env = check.environment
    summary = check.summary
    counts = {key: summary.get(key, 0) for key in ("add", "change", "destroy")}
    resources = [r.get("address", "") for r in summary.get("resources") or []][:50]
    audit_record(
        actor="system",
        action="drift.detected",
        data={
            "drift_check": check.pk,
            "environment": env.name,
            "deployment": deployment.pk,
            "commit_sha": deployment.commit_sha,
            **counts,
            "resources": resources,
        },
    )
    notices.drift_detected(
        env, check=check, deployment=deployment, counts=counts, resources=resources
    )
