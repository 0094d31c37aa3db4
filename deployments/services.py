"""Every write in the portal: one transaction, rule check, write, audit, on-commit dispatch."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import policy
from . import terraform as tf
from .choices import (
    REPLANNABLE_STATUSES,
    ChangeType,
    RunKind,
    RunStatus,
    TicketStatus,
)
from .models import AuditChainHead, AuditEvent, Environment, RunLogChunk, TerraformRun, Ticket
from .selectors import user_roles

log = logging.getLogger(__name__)
GENESIS_HASH = "0" * 64


class InputError(Exception):
    """Bad input: names the field it is about (maps to HTTP 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- audit trail -------------------------------------------------------------------


def _event_hash(event: AuditEvent) -> str:
    blob = json.dumps(event.payload(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def audit_record(
    *, actor: Any, action: str, ticket: Ticket | None = None, data: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an event to the hash chain; must run inside the caller's transaction."""
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    user = actor if getattr(actor, "pk", None) else None
    event = AuditEvent(
        at=timezone.now(),
        actor=user,
        actor_name=user.get_username() if user else str(actor or "system"),
        action=action,
        ticket=ticket,
        data=data or {},
        prev_hash=head.last_hash,
    )
    event.hash = _event_hash(event)
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


def audit_verify() -> tuple[bool, str]:
    """Walk the chain oldest first; report the first event whose hash or link is wrong."""
    prev = GENESIS_HASH
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return False, f"event {event.pk} ({event.action}) does not link to the event before it"
        if _event_hash(event) != event.hash:
            return False, f"event {event.pk} ({event.action}) was altered: its hash does not match"
        prev = event.hash
        count += 1
    return True, f"{count} events, chain intact"


# --- tickets -----------------------------------------------------------------------


def _transition(
    ticket: Ticket,
    to: TicketStatus,
    *,
    actor: Any,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Move a locked ticket to ``to`` (checked against ALLOWED_TRANSITIONS) and audit it."""
    policy.check_transition(ticket.status, to)
    previous = ticket.status
    now = timezone.now()
    ticket.status = to
    ticket.status_reason = reason
    ticket.status_changed_at = now
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if to == TicketStatus.COMPLETED:
        ticket.completed_at = now
        fields.append("completed_at")
    ticket.save(update_fields=fields)
    audit_record(
        actor=actor,
        action="ticket.transition",
        ticket=ticket,
        data={"from": previous, "to": to.value, "reason": reason, **(data or {})},
    )


def _locked(ticket_id: int) -> Ticket:
    return Ticket.objects.select_for_update().select_related("environment").get(pk=ticket_id)


def infra_repo() -> tf.InfraRepo:
    return tf.InfraRepo(location=settings.INFRA_REPO, cache_dir=settings.TERRAFORM_HOME)


@dataclass(frozen=True)
class TicketInput:
    """What a person or CI supplies when filing a ticket."""

    title: str
    environment: str
    description: str = ""
    commit_sha: str = ""
    change_type: str = ChangeType.NORMAL
    pull_request_url: str = ""
    risk_assessment: dict[str, Any] | None = None
    rollback_plan: dict[str, Any] | None = None
    scheduled_for: dt.datetime | None = None


def ticket_create(*, actor: Any, data: TicketInput, source: str = "web") -> Ticket:
    """File a ticket and start its first plan. Nothing is written when any check fails."""
    title = data.title.strip()
    if not title:
        raise InputError("title", "title is required")
    env = Environment.objects.filter(name=data.environment).first()
    if env is None:
        names = ", ".join(Environment.objects.values_list("name", flat=True))
        raise InputError(
            "environment", f"unknown environment {data.environment!r}; one of: {names}"
        )
    if data.change_type not in ChangeType.values:
        raise InputError(
            "change_type", f"change_type must be one of {', '.join(ChangeType.values)}"
        )
    policy.check_may_file(env, user_roles(actor), superuser=bool(actor.is_superuser))

    repo = infra_repo()
    sha = data.commit_sha.strip().lower()
    try:
        if not sha:
            sha = repo.branch_tip(settings.INFRA_BRANCH)
        elif not tf.SHA_RE.match(sha):
            raise InputError("commit_sha", "commit_sha must be a full 40-character hex SHA")
        elif not repo.has_commit(sha):
            raise InputError("commit_sha", f"commit {sha} is not in the infrastructure repository")
    except tf.SourceError as exc:
        raise InputError("commit_sha", str(exc)) from exc

    ticket = Ticket(
        title=title[:200],
        description=data.description,
        environment=env,
        commit_sha=sha,
        change_type=data.change_type,
        author=actor,
        pull_request_url=data.pull_request_url,
        risk_assessment=data.risk_assessment or {},
        rollback_plan=data.rollback_plan or {},
        scheduled_for=data.scheduled_for,
        source=source,
    )
    policy.check_ticket_fields(env, ticket)
    with transaction.atomic():
        ticket.save()
        audit_record(
            actor=actor,
            action="ticket.create",
            ticket=ticket,
            data={
                "environment": env.name,
                "commit_sha": sha,
                "change_type": ticket.change_type,
                "source": source,
            },
        )
        _plan_start(ticket, actor=actor)
    return ticket


def ticket_plan(*, ticket_id: int, actor: Any) -> TerraformRun:
    """(Re)plan a ticket. A new plan replaces the current one (approvals bind to plans)."""
    with transaction.atomic():
        ticket = _locked(ticket_id)
        if ticket.status not in REPLANNABLE_STATUSES:
            raise policy.PolicyError(
                f"a ticket that is {ticket.get_status_display().lower()} cannot be re-planned"
            )
        if ticket.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            raise policy.PolicyError("a Terraform run for this ticket is already in progress")
        return _plan_start(ticket, actor=actor)


def ticket_cancel(*, ticket_id: int, actor: Any, reason: str = "") -> Ticket:
    """Withdraw a ticket that is not applying."""
    with transaction.atomic():
        ticket = _locked(ticket_id)
        policy.check_may_cancel(ticket, actor.pk, user_roles(actor), superuser=actor.is_superuser)
        _transition(ticket, TicketStatus.CANCELLED, actor=actor, reason=reason or "cancelled")
        TerraformRun.objects.filter(ticket=ticket, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
        return ticket


def _plan_start(ticket: Ticket, *, actor: Any) -> TerraformRun:
    env = ticket.environment
    replaced = ticket.current_plan_id
    _transition(
        ticket,
        TicketStatus.PLANNING,
        actor=actor,
        data={"replaces_plan_run": replaced} if replaced else None,
    )
    ticket.current_plan = None
    ticket.save(update_fields=["current_plan"])
    run = TerraformRun.objects.create(
        ticket=ticket,
        environment=env,
        kind=RunKind.PLAN,
        commit_sha=ticket.commit_sha,
        workspace=env.workspace,
        var_file=env.var_file,
        requested_by=actor if getattr(actor, "pk", None) else None,
    )
    audit_record(
        actor=actor, action="run.queue", ticket=ticket, data={"run": run.pk, "kind": "plan"}
    )
    _dispatch_on_commit(run.pk)
    return run


def _dispatch_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: run_dispatch(run_id=run_id))


def run_dispatch(*, run_id: int) -> None:
    """Send a queued run to the Terraform queue. A broker outage is logged, not raised:
    the reconciler sends queued runs again."""
    from .tasks import run_execute  # tasks import services

    TerraformRun.objects.filter(pk=run_id).update(dispatch_count=F("dispatch_count") + 1)
    try:
        run_execute.apply_async(args=[run_id], retry=False)
    except Exception:
        log.exception("could not send run %s to the broker; the reconciler will retry", run_id)


# --- running Terraform (worker side) ----------------------------------------------


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
        worker=worker or socket.gethostname(),
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
    outcome: Callable[[], None]
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
                outcome = _finisher(run, writer, exit_code=127, error=str(exc))
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
    writer.flush()
    outcome()


def _execute_kind(run: TerraformRun, writer: _LogWriter) -> Callable[[], None]:
    if run.kind == RunKind.PLAN:
        result = tf.plan(_spec(run, timeout=settings.TERRAFORM_PLAN_TIMEOUT), writer)
        return _finisher(
            run,
            writer,
            exit_code=result.exit_code,
            error=result.error,
            plan=result if result.ok else None,
        )
    assert run.plan is not None
    plan_run = run.plan
    if run.kind == RunKind.APPLY:
        try:
            with plan_run.plan_file.open("rb") as handle:
                plan_bytes = handle.read()
        except (OSError, ValueError) as exc:
            message = f"the saved plan file of run {plan_run.pk} cannot be read: {exc}"
            writer(f"error: {message}")
            return _finisher(run, writer, exit_code=1, error=message)
        applied = tf.apply(
            _spec(run, timeout=settings.TERRAFORM_APPLY_TIMEOUT),
            plan_bytes,
            plan_run.plan_sha256,
            writer,
        )
        return _finisher(
            run, writer, exit_code=applied.exit_code, error=applied.error, stale=applied.stale_plan
        )
    checked = tf.check(_spec(run, timeout=settings.TERRAFORM_PLAN_TIMEOUT), writer)
    return _finisher(run, writer, exit_code=checked.exit_code, error=checked.error)


def _finisher(
    run: TerraformRun,
    writer: _LogWriter,
    *,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None = None,
    stale: bool = False,
) -> Callable[[], None]:
    def finish() -> None:
        _run_finish(
            run_id=run.pk,
            exit_code=exit_code,
            error=error,
            plan=plan,
            stale=stale,
            terraform_version=run.terraform_version,
        )

    return finish


def _fold_log(run: TerraformRun) -> str:
    text = "".join(
        RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
    )
    RunLogChunk.objects.filter(run=run).delete()
    return text


def _run_finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
) -> None:
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
        ticket = _locked(run.ticket_id)
        _advance_ticket(ticket, run, stale=stale)


def _advance_ticket(ticket: Ticket, run: TerraformRun, *, stale: bool = False) -> None:
    """What a finished run means for its ticket."""
    env = ticket.environment
    ok = run.status == RunStatus.SUCCEEDED
    if run.kind == RunKind.PLAN:
        if ticket.status != TicketStatus.PLANNING:
            return  # cancelled while planning: the plan is kept, the ticket stays put
        if not ok:
            _transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="worker",
                reason=run.error or "terraform plan failed",
                data={"run": run.pk},
            )
            return
        ticket.current_plan = run
        ticket.save(update_fields=["current_plan"])
        if policy.needs_approval(env):
            _transition(
                ticket,
                TicketStatus.AWAITING_APPROVAL,
                actor="worker",
                reason=policy.describe_rule(env.approval_rule),
                data={"run": run.pk},
            )
            return
        _transition(
            ticket,
            TicketStatus.APPROVED,
            actor="system",
            reason=f"{env.name} needs no approval",
            data={"plan_run": run.pk},
        )
        if env.auto_deploy:
            _apply_start(ticket, actor="system")
        return
    if run.kind == RunKind.APPLY:
        if ok:
            ticket.deployed_at = run.finished_at
            ticket.save(update_fields=["deployed_at"])
            _transition(
                ticket,
                TicketStatus.MONITORING,
                actor="worker",
                reason="applied; running post-apply checks"
                if env.auto_deploy
                else "applied; monitoring",
                data={"run": run.pk},
            )
            if env.auto_deploy:
                _check_start(ticket, run)
        else:
            reason = run.error or "terraform apply failed"
            _transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="worker",
                reason=reason,
                data={"run": run.pk, "stale_plan": stale},
            )
        transaction.on_commit(lambda: environment_release(environment_id=env.pk))
        return
    # Post-apply check.
    if ticket.status != TicketStatus.MONITORING:
        return
    if ok:
        _transition(
            ticket,
            TicketStatus.COMPLETED,
            actor="worker",
            reason="post-apply plan shows no changes",
            data={"run": run.pk},
        )
    else:
        _transition(
            ticket,
            TicketStatus.APPLY_FAILED,
            actor="worker",
            reason=run.error or "post-apply check failed",
            data={"run": run.pk},
        )


def _apply_start(ticket: Ticket, *, actor: Any) -> TerraformRun | None:
    """Queue the apply of the ticket's current plan, unless the environment is busy.

    The partial unique index on active applies per environment is the lock: a
    second apply cannot even be written while one is queued or running.
    """
    plan_run = ticket.current_plan
    if plan_run is None or plan_run.status != RunStatus.SUCCEEDED or not plan_run.plan_sha256:
        raise policy.PolicyError("the ticket has no successful plan to apply")
    newer = ticket.runs.filter(kind=RunKind.PLAN, pk__gt=plan_run.pk).exists()
    if newer:
        raise policy.PolicyError("a newer plan exists for this ticket; it must be approved first")
    env = ticket.environment
    try:
        with transaction.atomic():
            run = TerraformRun.objects.create(
                ticket=ticket,
                environment=env,
                kind=RunKind.APPLY,
                plan=plan_run,
                commit_sha=plan_run.commit_sha,
                workspace=plan_run.workspace,
                var_file=plan_run.var_file,
                requested_by=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError:
        busy = (
            TerraformRun.objects.filter(
                environment=env,
                kind=RunKind.APPLY,
                status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
            )
            .select_related("ticket")
            .first()
        )
        who = f"ticket #{busy.ticket_id} ({busy.ticket.title})" if busy else "another ticket"
        message = f"{env.name} is busy: {who} is applying; this ticket will deploy when it is free"
        if env.auto_deploy:
            ticket.status_reason = message
            ticket.save(update_fields=["status_reason"])
            return None
        raise policy.PolicyError(f"{env.name} is busy: {who} is applying") from None
    _transition(
        ticket,
        TicketStatus.APPLYING,
        actor=actor,
        reason=f"applying plan {plan_run.plan_sha256[:12]}",
        data={"run": run.pk, "plan_run": plan_run.pk, "plan_sha256": plan_run.plan_sha256},
    )
    _dispatch_on_commit(run.pk)
    return run


def _check_start(ticket: Ticket, apply_run: TerraformRun) -> None:
    assert apply_run.plan is not None
    run = TerraformRun.objects.create(
        ticket=ticket,
        environment=ticket.environment,
        kind=RunKind.CHECK,
        plan=apply_run.plan,
        commit_sha=apply_run.commit_sha,
        workspace=apply_run.workspace,
        var_file=apply_run.var_file,
    )
    audit_record(
        actor="worker", action="run.queue", ticket=ticket, data={"run": run.pk, "kind": "check"}
    )
    _dispatch_on_commit(run.pk)


def environment_release(*, environment_id: int) -> None:
    """Start the next auto-deploy ticket that waited while the environment was busy.

    Its plan may predate the apply that just finished, so it is planned again first
    (in an environment that needs no approval a new plan is no loss), never applied stale.
    """
    with transaction.atomic():
        waiting = (
            Ticket.objects.select_for_update()
            .filter(
                environment_id=environment_id,
                status=TicketStatus.APPROVED,
                environment__auto_deploy=True,
            )
            .order_by("created_at", "id")
            .first()
        )
        if waiting is None:
            return
        ticket = _locked(waiting.pk)
        last_apply = (
            TerraformRun.objects.filter(
                environment_id=environment_id, kind=RunKind.APPLY, status=RunStatus.SUCCEEDED
            )
            .order_by("-finished_at")
            .first()
        )
        plan_run = ticket.current_plan
        if (
            plan_run
            and last_apply
            and last_apply.finished_at
            and plan_run.created_at < last_apply.finished_at
        ):
            _plan_start(ticket, actor="system")
            return
        try:
            _apply_start(ticket, actor="system")
        except policy.PolicyError:
            _plan_start(ticket, actor="system")


# --- recovery ----------------------------------------------------------------------


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
        ticket = _locked(run.ticket_id)
        if run.kind == RunKind.PLAN and ticket.status == TicketStatus.PLANNING:
            _transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="system",
                reason=f"plan interrupted: {reason}; run a new plan",
            )
        elif run.kind == RunKind.APPLY and ticket.status == TicketStatus.APPLYING:
            _transition(ticket, TicketStatus.APPLY_FAILED, actor="system", reason=run.error)
        elif run.kind == RunKind.CHECK and ticket.status == TicketStatus.MONITORING:
            _transition(
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
        run_dispatch(run_id=run_id)
        resent += 1
    for env_id in Environment.objects.filter(auto_deploy=True).values_list("pk", flat=True):
        environment_release(environment_id=env_id)
    return {"interrupted": interrupted, "resent": resent}
