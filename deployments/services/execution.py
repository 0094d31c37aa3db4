"""The worker side: claim a run, run Terraform, record the outcome, move the ticket on.

Applies are fenced: the worker takes the environment lock (deployments.locks) before it
claims the run and holds it until the outcome is recorded, and each claim gets a fencing
token (``Environment.apply_fence``, copied to ``TerraformRun.fence``). Every later write of
the run (log chunks, heartbeat, outcome) is conditioned on that token and on the run still
running, so a worker that was declared gone cannot overwrite what others decided since.
The reconciler interrupts an apply only when it can take the environment lock itself.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from deployments import clock, policy
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.locks import EnvironmentLock
from deployments.models import Environment, RunLogChunk, TerraformRun, Ticket
from deployments.selectors_windows import freezes_for

from . import followups, monitoring, notices, rollbacks, runs
from ._base import infra_repo, locked_ticket, transition
from .audit import audit_record
from .credentials import CredentialsUnavailable, run_credentials
from .deployments import deployment_monitoring_failed, deployment_record
from .risk import ticket_risk_refresh
from .schedules import schedulers_of

log = logging.getLogger(__name__)

# Pauses between attempts to record a run's outcome while the database is unreachable
# (about ten minutes in all); after the last one the lock is released and the reconciler
# marks the run interrupted.
_FINISH_RETRY_DELAYS: tuple[float, ...] = (0.5, 1, 2, 4, 8, 15, 30, 30, 60, 60, 120, 120, 150)


def _storable(text: str) -> str:
    """Terraform's output as the database can store it: PostgreSQL refuses NUL in text, and
    a line holding one (a provisioner printing binary) would fail every write it is in."""
    return text.replace("\x00", "\ufffd")


def _reset_connection() -> None:
    """Drop this thread's connection after a database error, so the next query opens a
    fresh one (inside a transaction the caller's rollback does that instead)."""
    if not connection.in_atomic_block:
        connection.close()


class _LogWriter:
    """Buffers a run's output and writes it as chunks, so pages can stream it live.

    Called from the thread reading Terraform's output and from the heartbeat thread;
    each write also proves the worker alive (``heartbeat_at``). A chunk is written only
    while the run is still running under this worker's fencing token; text that could
    not be written (a database error, or the run was interrupted meanwhile) stays in the
    buffer and is recorded with the outcome.

    Bounded (RUN_LOG_MAX_BYTES): the first half is kept as it comes (the head); after
    that, chunks keep coming (the live log goes on) but the oldest ones past the second
    half are deleted as new ones arrive (the tail), and one chunk between head and tail,
    in a sequence number kept for it, says how many lines and bytes were dropped. The
    worker holds at most about one tail's worth of text, whatever Terraform prints.
    """

    FLUSH_SECONDS = 0.5
    FLUSH_BYTES = 64 * 1024
    HEARTBEAT_SECONDS = 5.0

    def __init__(self, run: TerraformRun, *, fence: int = 0) -> None:
        self.run = run
        self.fence = fence
        self.seq = 0
        self.offset = 0
        self.buffer: collections.deque[str] = collections.deque()
        self.size = 0
        self.last_flush = time.monotonic()
        self.last_beat = 0.0
        self.fenced_out = False  # the run is no longer ours to write
        self.lock = threading.Lock()
        limit = settings.RUN_LOG_MAX_BYTES
        self.head_left = limit // 2
        self.tail_budget = limit - self.head_left
        self.in_tail = False
        self.marker_seq = 0  # the chunk saying what was dropped, once something was
        self.marker_written = False
        self.tail_chunks: collections.deque[tuple[int, int, int]] = collections.deque()
        self.tail_size = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    def __call__(self, line: str) -> None:
        line = _storable(line) + "\n"
        size = len(line.encode(errors="replace"))
        with self.lock:
            if not self.in_tail:
                if size <= self.head_left:
                    self.head_left -= size
                else:
                    # The head is full: what is buffered is its end; a sequence number is
                    # kept for the line that will say what was dropped after it.
                    self._flush()
                    self.in_tail = True
                    self.seq += 1
                    self.marker_seq = self.seq
            self.buffer.append(line)
            self.size += size
            if self.in_tail:
                # Unwritten text (the database is away) is bounded like the tail.
                while self.size > self.tail_budget and len(self.buffer) > 1:
                    dropped = self.buffer.popleft()
                    dropped_size = len(dropped.encode(errors="replace"))
                    self.size -= dropped_size
                    self.dropped_lines += 1
                    self.dropped_bytes += dropped_size
            if (
                time.monotonic() - self.last_flush >= self.FLUSH_SECONDS
                or self.size >= self.FLUSH_BYTES
            ):
                self._flush()

    def flush(self) -> bool:
        """Write what is buffered; False when some text is still unwritten."""
        with self.lock:
            self._flush()
            return not self.buffer

    def unwritten(self) -> str:
        """The text no chunk holds (handed to run_finish, so the log stays complete)."""
        with self.lock:
            text = "".join(self.buffer)
            self.buffer, self.size = collections.deque(), 0
            return text

    def dropped_note(self) -> str:
        return (
            f"[… {self.dropped_lines} lines ({self.dropped_bytes} bytes) of output dropped "
            f"here: a run's log keeps its first and last {settings.RUN_LOG_MAX_BYTES // 2} "
            "bytes (RUN_LOG_MAX_BYTES) …]\n"
        )

    def seal(self) -> None:
        """Before the outcome is recorded: the dropped-output line holds the final count."""
        with self.lock:
            if not self.dropped_lines:
                return
            try:
                with transaction.atomic():
                    if not self.marker_written:
                        RunLogChunk.objects.create(
                            run_id=self.run.pk,
                            seq=self.marker_seq,
                            start=self.offset,
                            text=self.dropped_note(),
                        )
                        self.marker_written = True
                    else:
                        RunLogChunk.objects.filter(run_id=self.run.pk, seq=self.marker_seq).update(
                            text=self.dropped_note()
                        )
            except DatabaseError:
                log.exception("could not record the dropped output of run %s", self.run.pk)
                _reset_connection()

    def _flush(self) -> None:
        now = time.monotonic()
        self.last_flush = now
        beat = now - self.last_beat >= self.HEARTBEAT_SECONDS
        if self.fenced_out or not (self.buffer or beat):
            return
        text = "".join(self.buffer)
        size = self.size
        try:
            with transaction.atomic():
                # The guarded update locks the run row: an interrupt either came first (no
                # row matches; the text is kept for the late finish) or waits for this chunk.
                owned = TerraformRun.objects.filter(
                    pk=self.run.pk, status=RunStatus.RUNNING, fence=self.fence
                ).update(heartbeat_at=timezone.now())
                if not owned:
                    self.fenced_out = True
                    return
                if text:
                    RunLogChunk.objects.create(
                        run_id=self.run.pk, seq=self.seq + 1, start=self.offset, text=text
                    )
                    if self.in_tail:
                        self._trim_tail(self.seq + 1, size, text.count("\n"))
        except DatabaseError:
            # Keep the text: the next flush writes it (a log never loses lines).
            log.exception("could not write the log of run %s; will retry", self.run.pk)
            _reset_connection()
            return
        self.last_beat = now
        if text:
            self.seq += 1
            self.offset += len(text)
            self.buffer, self.size = collections.deque(), 0

    def _trim_tail(self, seq: int, size: int, lines: int) -> None:
        """Inside _flush's transaction: the tail's oldest chunks go once it is too long."""
        self.tail_chunks.append((seq, size, lines))
        self.tail_size += size
        gone: list[int] = []
        dropped_lines = dropped_bytes = 0
        while self.tail_size > self.tail_budget and len(self.tail_chunks) > 1:
            old_seq, old_size, old_lines = self.tail_chunks.popleft()
            self.tail_size -= old_size
            gone.append(old_seq)
            dropped_lines += old_lines
            dropped_bytes += old_size
        if not gone:
            return
        RunLogChunk.objects.filter(run_id=self.run.pk, seq__in=gone).delete()
        self.dropped_lines += dropped_lines
        self.dropped_bytes += dropped_bytes
        if not self.marker_written:
            RunLogChunk.objects.create(
                run_id=self.run.pk, seq=self.marker_seq, start=self.offset, text=self.dropped_note()
            )
            self.marker_written = True


def _interrupt_terraform() -> None:
    """SIGINT each process this worker started (Terraform runs in a session of its own):
    its graceful stop, which writes state and releases the state lock.

    The process itself, not its group: under the sandbox that process is the outer
    bubblewrap, whose end is Terraform's one SIGINT (a second would make Terraform quit
    at once, "Two interrupts received"). The children are found through /proc.
    """
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and int(fields[2]) == int(entry):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGINT)


class _Heartbeat:
    """Flushes quiet output every quarter second and keeps ``heartbeat_at`` fresh while
    Terraform runs (a flush with nothing to write and no beat due costs no query).

    It survives database errors (logged, connection dropped, tried again next time), and
    for an apply it checks each second that the environment lock is still held: once it
    is lost, another worker may take the environment, so Terraform is stopped and the run
    ends interrupted.
    """

    # A line Terraform prints then falls silent after is readable within about this long.
    INTERVAL = 0.25
    LOCK_CHECK_SECONDS = 1.0

    def __init__(self, writer: _LogWriter, *, env_lock: EnvironmentLock | None = None) -> None:
        self.writer = writer
        self.env_lock = env_lock
        self.lock_lost = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        checked = 0.0
        try:
            while not self.stopped.wait(self.INTERVAL):
                try:
                    self.writer.flush()
                except Exception:
                    log.exception("heartbeat of run %s failed; retrying", self.writer.run.pk)
                    _reset_connection()
                lock = self.env_lock
                if lock is None or self.lock_lost.is_set():
                    continue
                if time.monotonic() - checked < self.LOCK_CHECK_SECONDS:
                    continue
                checked = time.monotonic()
                if not lock.alive():
                    self.lock_lost.set()
                    self.writer(
                        "error: this worker lost the environment lock (its database "
                        "session ended); stopping Terraform"
                    )
                    _interrupt_terraform()
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def _spec(run: TerraformRun, *, timeout: int, on_line: Callable[[str], None]) -> tf.RunSpec:
    """The frozen description of one Terraform run, from settings and the run row, with the
    credentials of its environment for its phase (which ``on_line`` is told about, never
    their values). Raises CredentialsUnavailable."""
    phase = policy.run_phase(run.kind)
    granted = run_credentials(
        run.environment, phase=phase, subject=f"t{run.ticket_id}-r{run.pk}", timeout=timeout
    )
    on_line(granted.description)
    return terraform_spec(
        environment=run.environment,
        commit_sha=run.commit_sha,
        workspace=run.workspace,
        var_file=run.var_file,
        timeout=timeout,
        expected_var_file_sha256=rollbacks.expected_var_file_sha256(run),
        credentials_env=granted.env,
    )


def terraform_spec(
    *,
    environment: Environment,
    commit_sha: str,
    workspace: str,
    var_file: str,
    timeout: int,
    expected_var_file_sha256: str = "",
    credentials_env: Mapping[str, str] | None = None,
) -> tf.RunSpec:
    """A Terraform run of ``commit_sha`` in ``workspace`` with ``var_file``, from settings
    and the environment's provider rules (runs of tickets, drift checks, speculative plans).
    ``credentials_env`` is the run's environment-and-phase credentials (services.credentials);
    of the worker's own environment only the non-secret TERRAFORM_ENV_PASSTHROUGH reaches
    Terraform."""
    return tf.RunSpec(
        binary=tf.find_binary(settings.TERRAFORM_BIN),
        repo=infra_repo(),
        commit_sha=commit_sha,
        terraform_dir=settings.TERRAFORM_DIR,
        workspace=workspace,
        var_file=var_file,
        expected_var_file_sha256=expected_var_file_sha256,
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
        credentials_env=dict(credentials_env or {}),
        sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
        require_lock_file=environment.require_lock_file,
        allow_provider_network=environment.allow_provider_network,
    )


def run_execute(*, run_id: int, worker: str = "") -> None:
    """Claim a queued run, run Terraform, record the result and move the ticket on.

    The claim is a guarded update: a duplicate delivery finds nothing to claim, so no
    run, and above all no apply, ever executes twice. An apply is claimed only under the
    environment lock, after the start-time re-check (window, approvals, plan).
    """
    run = TerraformRun.objects.filter(pk=run_id).only("kind", "environment_id", "status").first()
    if run is None or run.status != RunStatus.QUEUED:
        log.info("run %s is not queued any more; nothing to do", run_id)
        return
    worker = worker or "unknown-worker"
    if run.kind != RunKind.APPLY:
        if _claim(run_id, worker=worker, fence=0):
            _execute(run_id, fence=0, env_lock=None)
        return
    env_lock = EnvironmentLock(run.environment_id)
    if not env_lock.acquire(timeout=settings.RUN_LOCK_WAIT):
        # Only a holder finishing up (or the reconciler) holds it this long; the run stays
        # queued and the reconciler sends it again.
        log.warning("environment of run %s stays locked; the run stays queued", run_id)
        return
    try:
        fence = _claim_apply(run_id, worker=worker)
        if fence is not None:
            _execute(run_id, fence=fence, env_lock=env_lock)
    finally:
        env_lock.release()


def _claim(run_id: int, *, worker: str, fence: int) -> bool:
    now = timezone.now()
    with transaction.atomic():
        claimed = TerraformRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker, fence=fence
        )
        if not claimed:
            log.info("run %s is not queued any more; nothing to do", run_id)
            return False
        run = TerraformRun.objects.select_related("ticket").get(pk=run_id)
        audit_record(
            actor="worker",
            action="run.start",
            ticket=run.ticket,
            data={"run": run.pk, "kind": run.kind, "worker": worker, "fence": fence},
        )
    return True


def _claim_apply(run_id: int, *, worker: str) -> int | None:
    """Re-check and claim an apply under the environment lock; its fencing token, or None
    when it is not queued any more or may not start (then it ends cancelled)."""
    now = clock.now()
    queued = TerraformRun.objects.select_related("environment").get(pk=run_id)
    # Asked before the transaction: a remote repository is fetched first.
    on_branch = branch_check(queued.environment, queued.commit_sha)
    with transaction.atomic():
        ticket_id = TerraformRun.objects.values_list("ticket_id", flat=True).get(pk=run_id)
        ticket = locked_ticket(ticket_id)  # lock order: ticket → run → audit head
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            return None
        _record_branch(ticket, on_branch, run=run, moment="apply start")
        try:
            _check_start(ticket, run, now=now)
        except policy.ApplyRefused as refusal:
            _refuse_start(ticket, run, refusal)
            return None
        Environment.objects.filter(pk=run.environment_id).update(apply_fence=F("apply_fence") + 1)
        fence = Environment.objects.values_list("apply_fence", flat=True).get(pk=run.environment_id)
        if not _claim(run_id, worker=worker, fence=fence):
            return None
    return fence


def _check_start(ticket: Ticket, run: TerraformRun, *, now: dt.datetime) -> None:
    """The worker's re-check at the moment the apply would start (SPEC §3.4)."""
    assert run.plan_id is not None
    plan = TerraformRun.objects.get(pk=run.plan_id)
    current = ticket.current_plan if ticket.current_plan_id == plan.pk else None
    votes, stray = runs.apply_votes(ticket, plan)
    policy.check_apply_may_start(
        ticket,
        now=now,
        plan_sha256=plan.plan_sha256,
        current_plan_sha256=current.plan_sha256 if current else "",
        votes=votes,
        stray_approvals=stray,
        freezes=freezes_for(ticket.environment_id, now),
        branch=settings.INFRA_BRANCH,
    )


def branch_check(env: Environment, commit_sha: str) -> bool | None:
    """Is ``commit_sha`` on INFRA_BRANCH? Asked only for an environment that applies by
    itself (None elsewhere: nothing depends on it). A repository that cannot answer counts
    as "no": the ticket waits for a lead rather than applying unchecked."""
    if not policy.auto_deploys(env):
        return None
    try:
        return infra_repo().is_ancestor(commit_sha, settings.INFRA_BRANCH)
    except tf.SourceError as exc:
        log.warning("cannot tell whether %s is on %s: %s", commit_sha, settings.INFRA_BRANCH, exc)
        return False


def _record_branch(
    ticket: Ticket, on_branch: bool | None, *, run: TerraformRun, moment: str
) -> None:
    """Keep the latest answer of branch_check on the (locked) ticket; a change is audited."""
    if on_branch is None or ticket.commit_on_branch is on_branch:
        return
    before = ticket.commit_on_branch
    ticket.commit_on_branch = on_branch
    ticket.save(update_fields=["commit_on_branch", "updated_at"])
    audit_record(
        actor="worker",
        action="ticket.branch_check",
        ticket=ticket,
        data={
            "commit_sha": ticket.commit_sha,
            "branch": settings.INFRA_BRANCH,
            "on_branch": on_branch,
            "was": before,
            "run": run.pk,
            "checked_at": moment,
        },
    )


def _refuse_start(ticket: Ticket, run: TerraformRun, refusal: policy.ApplyRefused) -> None:
    """The apply is not started: the run ends cancelled and the ticket goes back."""
    reason = f"the apply was not started: {refusal.message}"
    run.status = RunStatus.CANCELLED
    run.finished_at = timezone.now()
    run.error = reason
    run.log = f"error: {reason}\n"
    run.save(update_fields=["status", "finished_at", "error", "log"])
    audit_record(
        actor="worker",
        action="run.refuse_start",
        ticket=ticket,
        data={"run": run.pk, "kind": run.kind, "reason": refusal.message},
    )
    scheduled = ticket.scheduled_for is not None
    if scheduled:  # the beat task handed it over: the schedule is spent, its people are told
        ticket.scheduled_for = None
        ticket.save(update_fields=["scheduled_for", "updated_at"])
    transition(ticket, refusal.back_to, actor="worker", reason=reason, data={"run": run.pk})
    if scheduled:
        notices.schedule_missed(ticket, people=schedulers_of(ticket), reason=reason)
    if refusal.back_to == TicketStatus.AWAITING_APPROVAL:
        notices.approval_needed(ticket)  # its approvals no longer hold: asked again


def _execute(run_id: int, *, fence: int, env_lock: EnvironmentLock | None) -> None:
    run = TerraformRun.objects.select_related("ticket", "environment", "plan").get(pk=run_id)
    writer = _LogWriter(run, fence=fence)
    heartbeat = _Heartbeat(writer, env_lock=env_lock)
    try:
        with heartbeat:
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
                outcome = _execute_kind(
                    run, writer, held_fds=env_lock.inheritable_fds if env_lock else ()
                )
    except BaseException as exc:
        # The worker is being stopped: the run is interrupted, never silently retried.
        writer(f"error: the worker stopped during this run ({type(exc).__name__})")
        writer.flush()
        run_interrupt(
            run_id=run.pk,
            reason=f"the worker stopped during the run ({type(exc).__name__})",
            fence=fence,
        )
        raise
    # Recorded only once the heartbeat has stopped writing chunks, so the log is complete.
    writer.flush()
    writer.seal()
    if heartbeat.lock_lost.is_set():
        # Someone else may hold the environment now: this run cannot count as applied.
        run_interrupt(
            run_id=run.pk,
            reason="its worker lost the environment lock and stopped Terraform",
            fence=fence,
        )
    # Whether a successful plan may apply by itself depends on where its commit is now.
    on_branch = (
        branch_check(run.environment, run.commit_sha)
        if run.kind == RunKind.PLAN and outcome.plan is not None
        else None
    )
    run_finish(
        run_id=run.pk,
        exit_code=outcome.exit_code,
        error=outcome.error,
        plan=outcome.plan,
        stale=outcome.stale,
        terraform_version=run.terraform_version,
        fence=fence,
        log_tail=writer.unwritten(),
        applied=outcome.applied,
        on_branch=on_branch,
    )


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    error: str = ""
    plan: tf.PlanResult | None = None
    stale: bool = False
    applied: tf.ApplyResult | None = None


def _execute_kind(
    run: TerraformRun, writer: _LogWriter, *, held_fds: tuple[int, ...] = ()
) -> _Outcome:
    apply = run.kind == RunKind.APPLY
    timeout = settings.TERRAFORM_APPLY_TIMEOUT if apply else settings.TERRAFORM_PLAN_TIMEOUT
    try:
        spec = _spec(run, timeout=timeout, on_line=writer)
    except CredentialsUnavailable as exc:
        writer(f"error: {exc.message}")
        return _Outcome(1, exc.message)
    if run.kind == RunKind.PLAN:
        result = tf.plan(spec, writer)
        return _Outcome(result.exit_code, result.error, plan=result if result.ok else None)
    assert run.plan is not None
    plan_run = run.plan
    if apply:
        try:
            with plan_run.plan_file.open("rb") as handle:
                plan_bytes = handle.read()
        except (OSError, ValueError) as exc:
            message = f"the saved plan file of run {plan_run.pk} cannot be read: {exc}"
            writer(f"error: {message}")
            return _Outcome(1, message)
        applied = tf.apply(
            # Terraform holds the environment lock's file too: if the worker dies, the lock
            # stays taken until Terraform (stopped by SIGINT on its parent's death) exits.
            dataclasses.replace(spec, held_fds=held_fds),
            plan_bytes,
            plan_run.plan_sha256,
            writer,
            base_state=plan_run.base_state,
        )
        return _Outcome(applied.exit_code, applied.error, stale=applied.stale_plan, applied=applied)
    checked = tf.check(spec, writer)
    return _Outcome(checked.exit_code, checked.error)


# PostgreSQL joins the run's chunks in ``seq`` order itself and appends them and a tail.
_FOLD_SQL_POSTGRESQL = (
    "UPDATE deployments_terraformrun SET log = log || COALESCE("
    "(SELECT string_agg(text, '' ORDER BY seq) FROM deployments_runlogchunk "
    "WHERE run_id = %s), '') || %s WHERE id = %s"
)


def _fold_log(run: TerraformRun, *, tail: str = "") -> None:
    """Append the run's log chunks, in order, then ``tail`` to its stored log, and drop the
    chunks. Call it after ``run.save()`` in the same transaction.

    On PostgreSQL the database joins the text: a 100,000-line log never becomes one string
    in the worker's memory (it was there twice: the chunks and their join). SQLite runs
    inside the worker's process, where its own join costs more memory than Python's
    (measured: ~8 times the log's size against ~3), so there Python joins. ``run.log``
    is read again from the database when next used.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_FOLD_SQL_POSTGRESQL, [run.pk, tail, run.pk])
    else:
        chunks = RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
        text = "".join(itertools.chain(chunks.iterator(chunk_size=16), [tail]))
        TerraformRun.objects.filter(pk=run.pk).update(log=Concat(F("log"), Value(text)))
        del text
    RunLogChunk.objects.filter(run=run).delete()
    run.__dict__.pop("log", None)  # deferred: loaded from the row when read


def run_finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
    fence: int = 0,
    log_tail: str = "",
    applied: tf.ApplyResult | None = None,
    on_branch: bool | None = None,
) -> None:
    """Record a run's outcome (log, exit code, plan file and digest) and move its ticket on.

    Retried with backoff while the database is unreachable: a run never stays running
    because one write failed. ``log_tail`` is output no log chunk holds yet; ``on_branch``
    is a plan's branch_check, asked once Terraform finished.
    """
    delays = list(_FINISH_RETRY_DELAYS)
    error, log_tail = _storable(error), _storable(log_tail)
    while True:
        try:
            _finish(
                run_id=run_id,
                exit_code=exit_code,
                error=error,
                plan=plan,
                stale=stale,
                terraform_version=terraform_version,
                fence=fence,
                log_tail=log_tail,
                applied=applied,
                on_branch=on_branch,
            )
            return
        except (OperationalError, InterfaceError):
            if not delays:
                raise
            log.exception("could not record the outcome of run %s; retrying", run_id)
            _reset_connection()
            time.sleep(delays.pop(0))


def _finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
    fence: int,
    log_tail: str,
    applied: tf.ApplyResult | None = None,
    on_branch: bool | None = None,
) -> None:
    with transaction.atomic():
        ticket_id = TerraformRun.objects.values_list("ticket_id", flat=True).get(pk=run_id)
        ticket = locked_ticket(ticket_id)  # lock order: ticket → run → audit head
        if ticket.rollback_of_id is not None:
            # A rollback's apply ends its original ticket: lock it now, before the audit
            # head, so the order stays ticket(s) → run → audit head.
            locked_ticket(ticket.rollback_of_id)
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.fence != fence or run.status not in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
            log.warning("run %s is not this worker's to finish (fence %s); ignored", run_id, fence)
            return
        if run.status == RunStatus.INTERRUPTED:
            _finish_after_interrupt(
                ticket,
                run,
                exit_code=exit_code,
                error=error,
                plan=plan,
                terraform_version=terraform_version,
                log_tail=log_tail,
            )
            return
        succeeded = exit_code == 0 and not error
        if run.kind == RunKind.CHECK and exit_code == 2:
            succeeded = False
        run.status = RunStatus.SUCCEEDED if succeeded else RunStatus.FAILED
        run.exit_code = exit_code
        run.error = error
        run.finished_at = timezone.now()
        run.terraform_version = terraform_version
        _keep_plan(run, plan)
        run.save()
        _fold_log(run, tail=log_tail)
        audit_record(
            actor="worker",
            action="run.finish",
            ticket=ticket,
            data={
                "run": run.pk,
                "kind": run.kind,
                "status": run.status,
                "exit_code": exit_code,
                "plan_sha256": run.plan_sha256,
                "error": error,
            },
        )
        if run.kind == RunKind.APPLY:
            deployment_record(ticket, run, applied)
        if run.status == RunStatus.SUCCEEDED:
            _record_branch(ticket, on_branch, run=run, moment="plan end")
        _advance_ticket(ticket, run, stale=stale)


def _keep_plan(run: TerraformRun, plan: tf.PlanResult | None) -> None:
    if plan is not None:
        run.plan_sha256 = plan.plan_sha256
        run.summary = plan.summary
        run.has_changes = plan.has_changes
        run.base_state = plan.base_state
        run.plan_file.save(f"run-{run.pk}.tfplan", ContentFile(plan.plan_bytes), save=False)


def _finish_after_interrupt(
    ticket: Ticket,
    run: TerraformRun,
    *,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    terraform_version: str,
    log_tail: str,
) -> None:
    """A run declared interrupted whose process finished after all: keep its real outcome
    (exit code, full log, error) next to the verdict, and tell people; the ticket is not
    moved on automatically."""
    ok = exit_code == 0 and not error and not (run.kind == RunKind.CHECK and exit_code == 2)
    outcome = "succeeded" if ok else f"failed (exit code {exit_code})"
    note = f"terraform {run.kind} finished after the run was marked interrupted: it {outcome}"
    if error:
        note += f": {error}"
    run.exit_code = exit_code
    run.terraform_version = terraform_version
    run.error = f"{run.error}\n\nThen {note}." if run.error else f"{note}."
    _keep_plan(run, plan)
    run.save()
    _fold_log(run, tail=f"{log_tail}note: {note}\n")
    audit_record(
        actor="worker",
        action="run.finish_after_interrupt",
        ticket=ticket,
        data={
            "run": run.pk,
            "kind": run.kind,
            "exit_code": exit_code,
            "outcome": "succeeded" if ok else "failed",
            "plan_sha256": run.plan_sha256,
            "error": error,
        },
    )
    newer = ticket.runs.filter(pk__gt=run.pk).exists()
    if newer or ticket.status not in (TicketStatus.APPLY_FAILED, TicketStatus.PLAN_FAILED):
        return
    if run.kind == RunKind.PLAN:
        advice = "run a new plan for this ticket"
    else:
        effect = "may have applied the plan" if ok else "may have changed part of the environment"
        advice = (
            f"the environment {effect}. Check the state (terraform state list; force-unlock "
            "if a lock remains), then run a new plan for this ticket (one showing no "
            "changes means the apply took effect) and have it approved again"
        )
    ticket.status_reason = f"{run.kind} run #{run.pk} was marked interrupted, then {note}; {advice}"
    ticket.save(update_fields=["status_reason", "updated_at"])


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
        ticket_risk_refresh(ticket, actor="worker", run=run)  # the rule may depend on it
        rule = policy.rule_for(ticket, now=timezone.now())
        if rule.required:
            transition(
                ticket,
                TicketStatus.AWAITING_APPROVAL,
                actor="worker",
                reason=policy.branch_note(ticket, settings.INFRA_BRANCH) or rule.describe(),
                data={"run": run.pk},
            )
            notices.approval_needed(ticket)
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
            notices.deploy_succeeded(ticket, run)
            if env.auto_deploy:
                runs.check_start(ticket, run)
            monitoring.monitoring_start(ticket, run)  # the period, its probes and checklist
            followups.emergency_deployed(ticket, run)  # the review an emergency owes
            rollbacks.rollback_deployed(ticket, run)  # a rollback ends its original ticket
            # No sign-off completes it here: QA's verdicts count only once given after this
            # apply (evidence_selectors.verdicts), never ones that predate it.
        else:
            reason = run.error or "terraform apply failed"
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="worker",
                reason=reason,
                data={"run": run.pk, "stale_plan": stale},
            )
            notices.deploy_failed(ticket, run, reason=reason)
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
        reason = run.error or "post-apply check failed"
        deployment_monitoring_failed(ticket, reason=reason, at=run.finished_at)
        transition(
            ticket,
            TicketStatus.APPLY_FAILED,
            actor="worker",
            reason=reason,
            data={"run": run.pk},
        )
        notices.deploy_failed(ticket, run, reason=f"post-apply check: {reason}")


def run_interrupt(*, run_id: int, reason: str, fence: int | None = None) -> bool:
    """Mark a run whose worker was lost as interrupted, and tell its ticket what to do.

    With ``fence``, only the claim holding that fencing token is interrupted.
    """
    with transaction.atomic():
        ticket_id = TerraformRun.objects.filter(pk=run_id).values_list("ticket_id", flat=True)
        if not ticket_id:
            return False
        ticket = locked_ticket(ticket_id[0])  # lock order: ticket → run → audit head
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING or (fence is not None and run.fence != fence):
            return False
        run.status = RunStatus.INTERRUPTED
        run.finished_at = timezone.now()
        run.error = reason
        if run.kind == RunKind.APPLY:
            run.error = (
                f"{reason}. The apply may have changed part of the environment and may hold the "
                "state lock. Check the state (terraform state list; force-unlock if a lock "
                "remains), "
                "then run a new plan for this ticket and have it approved again."
            )
        run.save()
        _fold_log(run, tail=f"\nerror: {run.error}\n")
        audit_record(
            actor="system",
            action="run.interrupt",
            ticket=ticket,
            data={"run": run.pk, "kind": run.kind, "reason": reason, "fence": run.fence},
        )
        if run.kind == RunKind.PLAN and ticket.status == TicketStatus.PLANNING:
            transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="system",
                reason=f"plan interrupted: {reason}; run a new plan",
            )
        elif run.kind == RunKind.APPLY and ticket.status == TicketStatus.APPLYING:
            transition(ticket, TicketStatus.APPLY_FAILED, actor="system", reason=run.error)
            notices.deploy_failed(ticket, run, reason=run.error)
        elif run.kind == RunKind.CHECK and ticket.status == TicketStatus.MONITORING:
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="system",
                reason=f"post-apply check interrupted: {reason}",
            )
        return True


def runs_reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Beat task: interrupt runs whose worker is gone; re-send queued runs (and speculative
    plans) never picked up, to their environment's queue.

    A plan or check is gone when its heartbeat is older than RUN_HEARTBEAT_TIMEOUT. An
    apply is gone only when its environment lock is free: a stalled worker (SIGSTOP, a long
    GC, Terraform waiting on a state lock) still holds it and is left alone, however
    silent, while a dead one is noticed at the next beat.
    """
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    interrupted = 0
    for run_id in (
        TerraformRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
        .exclude(kind=RunKind.APPLY)
        .values_list("pk", flat=True)
    ):
        interrupted += run_interrupt(
            run_id=run_id,
            reason=(
                f"its worker stopped reporting for more than {settings.RUN_HEARTBEAT_TIMEOUT} s"
            ),
        )
    for run_id, env_id, fence in TerraformRun.objects.filter(
        status=RunStatus.RUNNING, kind=RunKind.APPLY
    ).values_list("pk", "environment_id", "fence"):
        with EnvironmentLock(env_id) as env_lock:
            if not env_lock.try_acquire():
                continue  # its worker lives, perhaps stalled: never start a second apply
            interrupted += run_interrupt(
                run_id=run_id,
                reason="its worker is gone (it no longer holds the environment lock)",
                fence=fence,
            )
    resent = 0
    for run_id in TerraformRun.objects.filter(
        status=RunStatus.QUEUED,
        created_at__lt=now - dt.timedelta(seconds=settings.RUN_RESEND_AFTER),
    ).values_list("pk", flat=True):
        runs.run_dispatch(run_id=run_id)
        resent += 1
    for env_id in Environment.objects.filter(auto_deploy=True).values_list("pk", flat=True):
        runs.environment_release(environment_id=env_id)
    from .plans import speculative_plans_reconcile  # plans import this module's spec builder

    speculative = speculative_plans_reconcile(now=now)
    return {
        "interrupted": interrupted + speculative["interrupted"],
        "resent": resent + speculative["resent"],
    }
