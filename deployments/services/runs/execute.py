"""The worker's entry point: claim a queued run, run Terraform with its output streamed, and
hand the outcome over to be recorded."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from django.conf import settings

from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus
from deployments.lib.locks import EnvironmentLock
from deployments.models import TerraformRun
from deployments.services.credentials import CredentialsUnavailable
from deployments.services.runs.branch import branch_check
from deployments.services.runs.claim import claim, claim_apply
from deployments.services.runs.logstream import (
    Heartbeat,
    LogWriter,
)
from deployments.services.runs.outcome import run_finish
from deployments.services.runs.reconcile import run_interrupt
from deployments.services.runs.spec import run_spec
from deployments.services.stacks import stack_lock

log = logging.getLogger(__name__)


def run_execute(*, run_id: int, worker: str = "") -> None:
    """Claim a queued run, run Terraform, record the result and move the ticket on.

    The claim is a guarded update: a duplicate delivery finds nothing to claim, so no
    run, and above all no apply, ever executes twice. An apply is claimed only under the
    environment lock, after the start-time re-check (window, approvals, plan).
    """
    run = (
        TerraformRun.objects.filter(pk=run_id)
        .only("kind", "environment_id", "stack_id", "status")
        .first()
    )
    if run is None or run.status != RunStatus.QUEUED:
        log.info("run %s is not queued any more; nothing to do", run_id)
        return
    worker = worker or "unknown-worker"
    if run.kind != RunKind.APPLY:
        if claim(run_id, worker=worker, fence=0):
            _execute(run_id, fence=0, env_lock=None)
        return
    env_lock = stack_lock(run.environment_id, run.stack_id)  # this stack's, here
    if not env_lock.acquire(timeout=settings.RUN_LOCK_WAIT):
        # Only a holder finishing up (or the reconciler) holds it this long; the run stays
        # queued and the reconciler sends it again.
        log.warning("environment of run %s stays locked; the run stays queued", run_id)
        return
    try:
        fence = claim_apply(run_id, worker=worker)
        if fence is not None:
            _execute(run_id, fence=fence, env_lock=env_lock)
    finally:
        env_lock.release()


def _execute(run_id: int, *, fence: int, env_lock: EnvironmentLock | None) -> None:
    run = TerraformRun.objects.select_related("ticket", "environment", "plan").get(pk=run_id)
    writer = LogWriter(run, fence=fence)
    heartbeat = Heartbeat(writer, env_lock=env_lock)
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
    run: TerraformRun, writer: LogWriter, *, held_fds: tuple[int, ...] = ()
) -> _Outcome:
    apply = run.kind == RunKind.APPLY
    timeout = settings.TERRAFORM_APPLY_TIMEOUT if apply else settings.TERRAFORM_PLAN_TIMEOUT
    try:
        spec = run_spec(run, timeout=timeout, on_line=writer)
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
