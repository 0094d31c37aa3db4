"""The worker side: claim a run, run Terraform, record the outcome, move the ticket on."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, RunLogChunk, TerraformRun, Ticket

from . import runs
from ._base import infra_repo, locked_ticket, transition
from .audit import audit_record

log = logging.getLogger(__name__)


class _LogWriter:
    """Buffers a run's output and writes it as chunks, so pages can stream it live.

    Called from the thread reading Terraform's output and from the heartbeat thread;
    each write also proves the worker alive (``heartbeat_at``).
    """

    FLUSH_SECONDS = 0.5
    FLUSH_BYTES = 64 * 1024
    HEARTBEAT_SECONDS = 5.0

    def __init__(self, run: TerraformRun) -> None:
        self.run = run
        self.seq = 0
        self.offset = 0
        self.buffer: list[str] = []
        self.size = 0
        self.last_flush = time.monotonic()
        self.last_beat = 0.0
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.buffer.append(line + "\n")
            self.size += len(line) + 1
            if (
                time.monotonic() - self.last_flush >= self.FLUSH_SECONDS
                or self.size >= self.FLUSH_BYTES
            ):
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        now = time.monotonic()
        self.last_flush = now
        if self.buffer:
            text = "".join(self.buffer)
            self.buffer, self.size = [], 0
            self.seq += 1
            RunLogChunk.objects.create(run=self.run, seq=self.seq, start=self.offset, text=text)
            self.offset += len(text)
        if now - self.last_beat >= self.HEARTBEAT_SECONDS:
            self.last_beat = now
            TerraformRun.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())


class _Heartbeat:
    """Flushes quiet output each second and keeps ``heartbeat_at`` fresh while Terraform runs."""

    def __init__(self, writer: _LogWriter) -> None:
        self.writer = writer
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            while not self.stopped.wait(1.0):
                self.writer.flush()
        except Exception:
            log.exception("heartbeat of run %s failed", self.writer.run.pk)
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def _spec(run: TerraformRun, *, timeout: int) -> tf.RunSpec:
    """The frozen description of one Terraform run, from settings and the run row."""
    return tf.RunSpec(
        binary=tf.find_binary(settings.TERRAFORM_BIN),
        repo=infra_repo(),
        commit_sha=run.commit_sha,
        terraform_dir=settings.TERRAFORM_DIR,
        workspace=run.workspace,
        var_file=run.var_file,
        provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR,
        plugin_cache=settings.TERRAFORM_HOME / "plugin-cache",
        work_root=settings.TERRAFORM_HOME / "work",
        backend_config=tuple(settings.TERRAFORM_BACKEND_CONFIG),
        timeout=timeout,
        lock_timeout=settings.TERRAFORM_LOCK_TIMEOUT,
        passthrough_env={
            name: os.environ[name]
            for name in settings.TERRAFORM_ENV_PASSTHROUGH
            if name in os.environ
        },
    )


def run_execute(*, run_id: int, worker: str = "") -> None:
    """Claim a queued run, run Terraform, record the result and move the ticket on.

    The claim is a guarded update: a duplicate delivery finds nothing to claim,
    so no run, and above all no apply, ever executes twice.
    """
    now = timezone.now()
    claimed = TerraformRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker=worker or "unknown-worker",
    )
    if not claimed:
        log.info("run %s is not queued any more; nothing to do", run_id)
        return
    run = TerraformRun.objects.select_related("ticket", "environment", "plan").get(pk=run_id)
    writer = _LogWriter(run)
    with transaction.atomic():
        audit_record(
            actor="worker",
            action="run.start",
            ticket=run.ticket,
            data={"run": run.pk, "kind": run.kind, "worker": run.worker},
        )
    try:
        with _Heartbeat(writer):
            try:
                binary = tf.find_binary(settings.TERRAFORM_BIN)
                run.terraform_version = tf.version(binary)
                writer(
                    f"Terraform {run.terraform_version or '(unknown version)'} at {binary}; "
                    f"commit {run.commit_sha}, workspace {run.workspace}, var-file {run.var_file}"
                )
            except tf.TerraformNotFound as exc:
                writer(f"error: {exc}")
                outcome = _Outcome(exit_code=127, error=str(exc))
            else:
                outcome = _execute_kind(run, writer)
    except BaseException as exc:
        # The worker is being stopped: the run is interrupted, never silently retried.
        writer(f"error: the worker stopped during this run ({type(exc).__name__})")
        writer.flush()
        run_interrupt(
            run_id=run.pk, reason=f"the worker stopped during the run ({type(exc).__name__})"
        )
        raise
    # Recorded only once the heartbeat has stopped writing chunks, so the log is complete.
    writer.flush()
    run_finish(
        run_id=run.pk,
        exit_code=outcome.exit_code,
        error=outcome.error,
        plan=outcome.plan,
        stale=outcome.stale,
        terraform_version=run.terraform_version,
    )


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    error: str = ""
    plan: tf.PlanResult | None = None
    stale: bool = False


def _execute_kind(run: TerraformRun, writer: _LogWriter) -> _Outcome:
    if run.kind == RunKind.PLAN:
        result = tf.plan(_spec(run, timeout=settings.TERRAFORM_PLAN_TIMEOUT), writer)
        return _Outcome(result.exit_code, result.error, plan=result if result.ok else None)
    assert run.plan is not None
    plan_run = run.plan
    if run.kind == RunKind.APPLY:
        try:
            with plan_run.plan_file.open("rb") as handle:
                plan_bytes = handle.read()
        except (OSError, ValueError) as exc:
            message = f"the saved plan file of run {plan_run.pk} cannot be read: {exc}"
            writer(f"error: {message}")
            return _Outcome(1, message)
        applied = tf.apply(
            _spec(run, timeout=settings.TERRAFORM_APPLY_TIMEOUT),
            plan_bytes,
            plan_run.plan_sha256,
            writer,
            base_state=plan_run.base_state,
        )
        return _Outcome(applied.exit_code, applied.error, stale=applied.stale_plan)
    checked = tf.check(_spec(run, timeout=settings.TERRAFORM_PLAN_TIMEOUT), writer)
    return _Outcome(checked.exit_code, checked.error)


def _fold_log(run: TerraformRun) -> str:
    text = "".join(
        RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
    )
    RunLogChunk.objects.filter(run=run).delete()
    return text


def run_finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
) -> None:
    """Record a run's outcome (log, exit code, plan file and digest) and move its ticket on."""
    with transaction.atomic():
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING:
            # Declared interrupted meanwhile (a reconciler decided the worker was lost):
            # keep that verdict, but keep the log too.
            run.log = run.log or _fold_log(run)
            run.save(update_fields=["log"])
            return
        succeeded = exit_code == 0 and not error
        if run.kind == RunKind.CHECK and exit_code == 2:
            succeeded = False
        run.status = RunStatus.SUCCEEDED if succeeded else RunStatus.FAILED
        run.exit_code = exit_code
        run.error = error
        run.finished_at = timezone.now()
        run.terraform_version = terraform_version
        run.log = _fold_log(run)
        if plan is not None:
            run.plan_sha256 = plan.plan_sha256
            run.summary = plan.summary
            run.has_changes = plan.has_changes
            run.base_state = plan.base_state
            run.plan_file.save(f"run-{run.pk}.tfplan", ContentFile(plan.plan_bytes), save=False)
        run.save()
        audit_record(
            actor="worker",
            action="run.finish",
            ticket=run.ticket,
            data={
                "run": run.pk,
                "kind": run.kind,
                "status": run.status,
                "exit_code": exit_code,
                "plan_sha256": run.plan_sha256,
                "error": error,
            },
        )
        ticket = locked_ticket(run.ticket_id)
        _advance_ticket(ticket, run, stale=stale)


def _advance_ticket(ticket: Ticket, run: TerraformRun, *, stale: bool = False) -> None:
    """What a finished run means for its ticket."""
    env = ticket.environment
    ok = run.status == RunStatus.SUCCEEDED
    if run.kind == RunKind.PLAN:
        if ticket.status != TicketStatus.PLANNING:
            return  # cancelled while planning: the plan is kept, the ticket stays put
        if not ok:
            transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="worker",
                reason=run.error or "terraform plan failed",
                data={"run": run.pk},
            )
            return
        ticket.current_plan = run
        ticket.save(update_fields=["current_plan"])
        rule = policy.rule_for(ticket)
        if rule.required:
            transition(
                ticket,
                TicketStatus.AWAITING_APPROVAL,
                actor="worker",
                reason=rule.describe(),
                data={"run": run.pk},
            )
            return
        transition(
            ticket,
            TicketStatus.APPROVED,
            actor="system",
            reason=f"{env.name} needs no approval",
            data={"plan_run": run.pk},
        )
        if policy.auto_deploys(env):
            runs.apply_start(ticket, actor="system", wait_if_busy=True)
        return
    if run.kind == RunKind.APPLY:
        if ok:
            ticket.deployed_at = run.finished_at
            ticket.save(update_fields=["deployed_at"])
            transition(
                ticket,
                TicketStatus.MONITORING,
                actor="worker",
                reason="applied; running post-apply checks"
                if env.auto_deploy
                else "applied; monitoring",
                data={"run": run.pk},
            )
            if env.auto_deploy:
                runs.check_start(ticket, run)
        else:
            reason = run.error or "terraform apply failed"
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="worker",
                reason=reason,
                data={"run": run.pk, "stale_plan": stale},
            )
        transaction.on_commit(lambda: runs.environment_release(environment_id=env.pk))
        return
    # Post-apply check.
    if ticket.status != TicketStatus.MONITORING:
        return
    if ok:
        transition(
            ticket,
            TicketStatus.COMPLETED,
            actor="worker",
            reason="post-apply plan shows no changes",
            data={"run": run.pk},
        )
    else:
        transition(
            ticket,
            TicketStatus.APPLY_FAILED,
            actor="worker",
            reason=run.error or "post-apply check failed",
            data={"run": run.pk},
        )


def run_interrupt(*, run_id: int, reason: str) -> bool:
    """Mark a run whose worker was lost as interrupted, and tell its ticket what to do."""
    with transaction.atomic():
        run = TerraformRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.RUNNING:
            return False
        run.status = RunStatus.INTERRUPTED
        run.finished_at = timezone.now()
        run.error = reason
        run.log = _fold_log(run)
        if run.kind == RunKind.APPLY:
            run.error = (
                f"{reason}. The apply may have changed part of the environment and may hold the "
                "state lock. Check the state (terraform state list; force-unlock if a lock "
                "remains), "
                "then run a new plan for this ticket and have it approved again."
            )
        run.log += f"\nerror: {run.error}\n"
        run.save()
        audit_record(
            actor="system",
            action="run.interrupt",
            ticket=run.ticket,
            data={"run": run.pk, "kind": run.kind, "reason": reason},
        )
        ticket = locked_ticket(run.ticket_id)
        if run.kind == RunKind.PLAN and ticket.status == TicketStatus.PLANNING:
            transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="system",
                reason=f"plan interrupted: {reason}; run a new plan",
            )
        elif run.kind == RunKind.APPLY and ticket.status == TicketStatus.APPLYING:
            transition(ticket, TicketStatus.APPLY_FAILED, actor="system", reason=run.error)
        elif run.kind == RunKind.CHECK and ticket.status == TicketStatus.MONITORING:
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="system",
                reason=f"post-apply check interrupted: {reason}",
            )
        return True


def runs_reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Beat task: interrupt runs whose worker went silent; re-send queued runs never picked up."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    interrupted = 0
    for run_id in TerraformRun.objects.filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=stale_before
    ).values_list("pk", flat=True):
        interrupted += run_interrupt(
            run_id=run_id,
            reason=(
                f"its worker stopped reporting for more than {settings.RUN_HEARTBEAT_TIMEOUT} s"
            ),
        )
    resent = 0
    for run_id in TerraformRun.objects.filter(
        status=RunStatus.QUEUED, created_at__lt=now - dt.timedelta(seconds=60)
    ).values_list("pk", flat=True):
        runs.run_dispatch(run_id=run_id)
        resent += 1
    for env_id in Environment.objects.filter(auto_deploy=True).values_list("pk", flat=True):
        runs.environment_release(environment_id=env_id)
    return {"interrupted": interrupted, "resent": resent}
