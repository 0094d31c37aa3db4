"""Speculative plans: `terraform plan` of any commit (a pull request's head) for CI's check.

A speculative plan runs on its environment's queue, through the same runner as every
ticket's plan, with the environment's *plan* credentials. It has no ticket: nothing can
approve it, its plan file is not kept, and no endpoint or service applies it, so a pull
request's unreviewed code is only ever planned. The log is kept bounded (the head and the
tail, with a line saying what was dropped between).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import socket
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.choices import RunStatus
from deployments.models import Environment, SpeculativePlan
from deployments.selectors import user_roles
from deployments.services._base import InputError, infra_repo
from deployments.services.audit import audit_record
from deployments.services.credentials import CredentialsUnavailable, run_credentials

log = logging.getLogger(__name__)

# What a speculative plan's stored log keeps: its first and its last characters.
LOG_HEAD_CHARS = 64 * 1024
LOG_TAIL_CHARS = 192 * 1024
LINE_MAX_CHARS = 8 * 1024


class BoundedLog:
    """Output lines kept within LOG_HEAD_CHARS + LOG_TAIL_CHARS whatever Terraform prints:
    the head, the tail, and a count of the lines and characters dropped in between."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.head_size = 0
        self.tail: collections.deque[str] = collections.deque()
        self.tail_size = 0
        self.dropped_lines = 0
        self.dropped_chars = 0

    def __call__(self, line: str) -> None:
        line = line.replace("\x00", "\ufffd")
        if len(line) > LINE_MAX_CHARS:
            cut = len(line) - LINE_MAX_CHARS
            line = f"{line[:LINE_MAX_CHARS]} … [{cut} more characters cut]"
        line += "\n"
        if self.head_size + len(line) <= LOG_HEAD_CHARS and not self.tail:
            self.head.append(line)
            self.head_size += len(line)
            return
        self.tail.append(line)
        self.tail_size += len(line)
        while self.tail_size > LOG_TAIL_CHARS and len(self.tail) > 1:
            dropped = self.tail.popleft()
            self.tail_size -= len(dropped)
            self.dropped_lines += 1
            self.dropped_chars += len(dropped)

    def text(self) -> str:
        middle = (
            [f"… {self.dropped_lines} lines ({self.dropped_chars} characters) not kept …\n"]
            if self.dropped_lines
            else []
        )
        return "".join([*self.head, *middle, *self.tail])


def speculative_plan_create(
    *, actor: Any, environment: str, commit_sha: str, pull_request_url: str = ""
) -> SpeculativePlan:
    """Queue a speculative plan of ``commit_sha`` in ``environment``; whoever may file
    tickets there may ask. Nothing is written when a check fails."""
    env = Environment.objects.filter(name=environment).first()
    if env is None:
        names = ", ".join(Environment.objects.values_list("name", flat=True))
        raise InputError("environment", f"unknown environment {environment!r}; one of: {names}")
    policy.check_may_file(env, user_roles(actor), superuser=bool(actor.is_superuser))
    sha = commit_sha.strip().lower()
    if not tf.SHA_RE.match(sha):
        raise InputError("commit_sha", "commit_sha must be a full 40-character hex SHA")
    try:
        known = infra_repo().has_commit(sha)
    except tf.SourceError as exc:
        raise InputError("commit_sha", str(exc)) from exc
    if not known:
        raise InputError("commit_sha", f"commit {sha} is not in the infrastructure repository")
    with transaction.atomic():
        plan = SpeculativePlan.objects.create(
            environment=env,
            commit_sha=sha,
            pull_request_url=pull_request_url,
            requested_by=actor,
        )
        audit_record(
            actor=actor,
            action="speculative_plan.queue",
            data={
                "speculative_plan": plan.pk,
                "environment": env.name,
                "commit_sha": sha,
                "pull_request_url": pull_request_url,
            },
        )
        transaction.on_commit(lambda: speculative_plan_dispatch(plan_id=plan.pk))
    return plan


def speculative_plan_dispatch(*, plan_id: int) -> None:
    """Send a queued speculative plan to its environment's Terraform queue (deployments.lib.queues
    routes it). A broker outage is logged: the reconciler sends it again."""
    from deployments.tasks import speculative_plan_run  # tasks import services

    SpeculativePlan.objects.filter(pk=plan_id).update(dispatch_count=F("dispatch_count") + 1)
    try:
        speculative_plan_run.apply_async(args=[plan_id], retry=False)
    except Exception:
        log.exception("could not send speculative plan %s to the broker", plan_id)


def _finish(plan_id: int, *, status: str, **fields: Any) -> None:
    with transaction.atomic():
        updated = SpeculativePlan.objects.filter(pk=plan_id, status=RunStatus.RUNNING).update(
            status=status, finished_at=timezone.now(), **fields
        )
        if not updated:
            return  # declared lost by the reconciler meanwhile; its verdict stands
        audit_record(
            actor="worker",
            action="speculative_plan.finish",
            data={
                "speculative_plan": plan_id,
                "status": status,
                "exit_code": fields.get("exit_code"),
                "error": fields.get("error", ""),
            },
        )


def speculative_plan_run(*, plan_id: int, worker: str = "") -> None:
    """Claim a queued speculative plan (a guarded update: a duplicate delivery finds nothing),
    plan it with the environment's plan credentials, and record the outcome."""
    now = timezone.now()
    worker = worker or socket.gethostname()
    with transaction.atomic():
        claimed = SpeculativePlan.objects.filter(pk=plan_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, worker=worker[:200]
        )
        if not claimed:
            return
        audit_record(
            actor="worker",
            action="speculative_plan.start",
            data={"speculative_plan": plan_id, "worker": worker},
        )
    plan = SpeculativePlan.objects.select_related("environment").get(pk=plan_id)
    env = plan.environment
    lines = BoundedLog()
    version = ""
    try:
        binary = tf.find_binary(settings.TERRAFORM_BIN)
        version = tf.version(binary)
        lines(
            f"Speculative plan (never applied) of commit {plan.commit_sha} in {env.name}: "
            f"Terraform {version or '(unknown version)'}, workspace {env.workspace}, "
            f"var-file {env.var_file}"
        )
        granted = run_credentials(
            env,
            phase=policy.PLAN_PHASE,
            subject=f"sp{plan.pk}-{env.name}",
            timeout=settings.TERRAFORM_PLAN_TIMEOUT,
        )
        lines(granted.description)
        from deployments.services.runs.spec import terraform_spec  # runs import this module

        spec = terraform_spec(
            environment=env,
            commit_sha=plan.commit_sha,
            workspace=env.workspace,
            var_file=env.var_file,
            timeout=settings.TERRAFORM_PLAN_TIMEOUT,
            credentials_env=granted.env,
        )
        result = tf.plan(spec, lines)
    except (tf.TerraformNotFound, CredentialsUnavailable) as exc:
        message = getattr(exc, "message", None) or str(exc)
        lines(f"error: {message}")
        result = tf.PlanResult(
            exit_code=127 if isinstance(exc, tf.TerraformNotFound) else 1, error=message
        )
    except BaseException as exc:
        # The worker is being stopped: recorded as interrupted, never silently re-run.
        lines(f"error: the worker stopped during this plan ({type(exc).__name__})")
        _finish(
            plan_id,
            status=RunStatus.INTERRUPTED,
            error=f"the worker stopped during the plan ({type(exc).__name__})",
            log=lines.text(),
            terraform_version=version,
        )
        raise
    summary = dict(result.summary)
    _finish(
        plan_id,
        status=RunStatus.SUCCEEDED if result.ok else RunStatus.FAILED,
        exit_code=result.exit_code,
        error=result.error,
        summary=summary,
        has_changes=result.has_changes,
        log=lines.text(),
        terraform_version=version,
    )


def speculative_plans_reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Beat (with runs_reconcile): send queued plans nobody picked up again; a plan running
    past twice the plan timeout lost its worker and ends interrupted."""
    now = now or timezone.now()
    lost_before = now - dt.timedelta(seconds=2 * settings.TERRAFORM_PLAN_TIMEOUT + 60)
    lost = list(
        SpeculativePlan.objects.filter(
            status=RunStatus.RUNNING, started_at__lt=lost_before
        ).values_list("pk", flat=True)
    )
    for plan_id in lost:
        _finish(plan_id, status=RunStatus.INTERRUPTED, error="its worker was lost")
    resent = 0
    for plan_id in SpeculativePlan.objects.filter(
        status=RunStatus.QUEUED,
        created_at__lt=now - dt.timedelta(seconds=settings.RUN_RESEND_AFTER),
    ).values_list("pk", flat=True):
        speculative_plan_dispatch(plan_id=plan_id)
        resent += 1
    return {"interrupted": len(lost), "resent": resent}
