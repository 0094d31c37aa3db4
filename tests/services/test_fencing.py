"""Applies are re-checked when they start, fenced by the environment lock, and nothing a
worker writes is lost: the log survives database errors, the outcome write is retried, and
a run that finishes after being declared interrupted keeps its real outcome."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.lib.locks import EnvironmentLock
from deployments.models import Approval, AuditEvent, Environment, RunLogChunk, TerraformRun, Ticket
from deployments.services.runs import logstream, outcome
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.tickets import approve, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

TUESDAY_0359_NEW_YORK = "2026-11-24 08:59:00+00:00"
TUESDAY_0700_NEW_YORK = "2026-11-24 12:00:00+00:00"
TUESDAY_0230_NEW_YORK = "2026-11-24 07:30:00+00:00"


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: sent.append(run_id))
    return sent


@pytest.fixture
def fake_terraform(
    monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> list[tuple[str, str]]:
    """Terraform that records what it was asked to apply; plans get a readable file."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    applied: list[tuple[str, str]] = []

    def apply(spec: Any, plan_bytes: bytes, sha: str, on_line: Any, **kw: Any) -> Any:
        on_line("Apply complete!")
        applied.append((spec.workspace, sha))
        return tf.ApplyResult(exit_code=0)

    monkeypatch.setattr("deployments.terraform.apply", apply)
    monkeypatch.setattr("deployments.terraform.version", lambda binary: "1.11.4")
    monkeypatch.setattr("deployments.terraform.find_binary", lambda configured="": "terraform")
    return applied


def _with_plan_file(ticket: Ticket) -> Ticket:
    plan = ticket.current_plan
    assert plan is not None
    plan.plan_file.save(f"run-{plan.pk}.tfplan", ContentFile(b"plan"), save=True)
    return ticket


def _deploy(ticket: Ticket, operations: User) -> TerraformRun:
    response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 202, response.json()
    return TerraformRun.objects.get(pk=response.json()["id"])


def _approved_and_deployed(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> tuple[Ticket, TerraformRun]:
    """A prod ticket approved by both leads whose deploy operations requested (queued)."""
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    approve(devops_lead, ticket)
    return ticket, _deploy(_with_plan_file(Ticket.objects.get(pk=ticket.pk)), operations)


# --- 1. the worker re-checks when the apply starts ---------------------------------


def test_prod_apply_requested_at_0359_and_picked_up_at_0700_is_not_started(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    with time_machine.travel(TUESDAY_0359_NEW_YORK, tick=False):
        ticket, run = _approved_and_deployed(author, tech_lead, devops_lead, operations)
    with time_machine.travel(TUESDAY_0700_NEW_YORK, tick=False):
        services.run_execute(run_id=run.pk, worker="busy-worker")
    assert fake_terraform == []  # Terraform never ran
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.started_at is None
    assert "change window" in run.error and "not started" in run.log
    assert ticket.status == TicketStatus.APPROVED
    assert "not started" in ticket.status_reason and "change window" in ticket.status_reason
    assert AuditEvent.objects.filter(ticket=ticket, action="run.refuse_start").exists()
    assert AuditEvent.objects.filter(
        ticket=ticket, action="ticket.transition", data__from="applying", data__to="approved"
    ).exists()
    # The environment is free again: the next window's deploy is accepted.
    with time_machine.travel("2026-11-26 07:30:00+00:00", tick=False):
        assert _deploy(ticket, operations).kind == RunKind.APPLY


def test_an_emergency_apply_picked_up_outside_the_window_still_starts(
    author: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    ticket = awaiting("prod", author, change_type="emergency")
    approve(devops_lead, ticket)
    with time_machine.travel(TUESDAY_0700_NEW_YORK, tick=False):
        run = _deploy(_with_plan_file(Ticket.objects.get(pk=ticket.pk)), operations)
        services.run_execute(run_id=run.pk, worker="w")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and len(fake_terraform) == 1


def test_an_approver_removed_from_the_role_since_approving_no_longer_counts_at_start(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    with time_machine.travel(TUESDAY_0230_NEW_YORK, tick=False):
        ticket, run = _approved_and_deployed(author, tech_lead, devops_lead, operations)
        devops_lead.groups.remove(Group.objects.get(name="devops_lead"))
        services.run_execute(run_id=run.pk, worker="w")
    assert fake_terraform == []
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert "otto no longer holds the role" in ticket.status_reason
    assert "a DevOps Lead" in ticket.status_reason


def test_an_approval_voided_since_the_deploy_request_stops_the_apply_at_start(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    """The standing approvals are counted again when the worker picks the apply up."""
    with time_machine.travel(TUESDAY_0230_NEW_YORK, tick=False):
        ticket, run = _approved_and_deployed(author, tech_lead, devops_lead, operations)
        Approval.objects.filter(ticket=ticket, approver=devops_lead).update(
            voided_at=timezone.now()
        )
        services.run_execute(run_id=run.pk, worker="w")
    assert fake_terraform == []
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.started_at is None
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert "approvals no longer hold" in ticket.status_reason
    assert "a DevOps Lead" in ticket.status_reason
    assert AuditEvent.objects.filter(ticket=ticket, action="run.refuse_start").exists()


def test_an_apply_whose_plan_is_no_longer_the_current_one_is_not_started(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    """The digest is compared again at start: the queued apply's plan must still be the
    ticket's current plan, the one the approvals name."""
    with time_machine.travel(TUESDAY_0230_NEW_YORK, tick=False):
        ticket, run = _approved_and_deployed(author, tech_lead, devops_lead, operations)
        newer = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"newer").hexdigest())
        Ticket.objects.filter(pk=ticket.pk).update(current_plan=newer)
        services.run_execute(run_id=run.pk, worker="w")
    assert fake_terraform == []
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.started_at is None
    assert "not the ticket's current plan" in run.error
    assert ticket.status == TicketStatus.AWAITING_APPROVAL


def test_deploy_is_refused_when_an_approver_has_lost_the_role(
    author: User, tech_lead: User, devops_lead: User, operations: User, no_dispatch: list[int]
) -> None:
    with time_machine.travel(TUESDAY_0230_NEW_YORK, tick=False):
        ticket = awaiting("prod", author)
        approve(tech_lead, ticket)
        approve(devops_lead, ticket)
        tech_lead.groups.clear()
        response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 409
    assert "tess no longer holds the role" in response.json()["detail"]
    assert not TerraformRun.objects.filter(kind=RunKind.APPLY).exists()


# --- 2. fencing: the environment lock -----------------------------------------------


def _running_apply(*, minutes_silent: int, fence: int = 1) -> tuple[Ticket, TerraformRun]:
    ticket = TicketFactory(status=TicketStatus.APPLYING)
    plan = RunFactory(ticket=ticket, plan_sha256="a" * 64)
    beat = timezone.now() - dt.timedelta(minutes=minutes_silent)
    run = RunFactory(
        ticket=ticket,
        kind=RunKind.APPLY,
        plan=plan,
        status=RunStatus.RUNNING,
        started_at=beat,
        heartbeat_at=beat,
        fence=fence,
    )
    RunLogChunk.objects.create(run=run, seq=1, start=0, text="Applying...\n")
    return ticket, run


def test_a_silent_apply_whose_worker_holds_the_lock_is_never_interrupted(
    no_dispatch: list[int],
) -> None:
    """A SIGSTOPped worker, a long GC, Terraform waiting on a state lock: silent, alive."""
    _ticket, run = _running_apply(minutes_silent=600)
    with EnvironmentLock(run.environment_id) as held:
        assert held.try_acquire()
        result = services.runs_reconcile()
    assert result["interrupted"] == 0
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_an_apply_whose_worker_is_gone_is_interrupted_without_waiting_for_the_heartbeat(
    no_dispatch: list[int],
) -> None:
    ticket, run = _running_apply(minutes_silent=0)
    assert services.runs_reconcile()["interrupted"] == 1
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED and "environment lock" in run.error
    assert ticket.status == TicketStatus.APPLY_FAILED
    # The lock was only borrowed: the environment is free for the next worker.
    with EnvironmentLock(run.environment_id) as lock:
        assert lock.try_acquire()


def test_the_environment_lock_has_one_holder_at_a_time() -> None:
    env = Environment.objects.get(name="prod")
    first, second = EnvironmentLock(env.pk), EnvironmentLock(env.pk)
    try:
        assert first.try_acquire() and first.alive()
        assert not second.try_acquire()
        with EnvironmentLock(Environment.objects.get(name="dev").pk) as other_environment:
            assert other_environment.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


def test_each_apply_claim_takes_a_new_fencing_token(
    author: User,
    devops_lead: User,
    operations: User,
    no_dispatch: list[int],
    fake_terraform: list[tuple[str, str]],
) -> None:
    env = Environment.objects.get(name="prod")
    fences = []
    for _ in range(2):
        ticket = awaiting("prod", author, change_type="emergency")
        approve(devops_lead, ticket)
        run = _deploy(_with_plan_file(Ticket.objects.get(pk=ticket.pk)), operations)
        services.run_execute(run_id=run.pk, worker="w")
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED
        fences.append(run.fence)
    env.refresh_from_db()
    assert fences == [1, 2] and env.apply_fence == 2


def test_a_worker_declared_gone_cannot_write_into_the_run_any_more(
    no_dispatch: list[int],
) -> None:
    _ticket, run = _running_apply(minutes_silent=0, fence=7)
    RunLogChunk.objects.filter(run=run).delete()
    writer = logstream.LogWriter(run, fence=7)
    writer("still applying")
    assert writer.flush()
    assert services.run_interrupt(run_id=run.pk, reason="declared gone", fence=7)
    writer("Apply complete!")
    assert not writer.flush()  # fenced out: nothing written, nothing dropped
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED and run.log.startswith("still applying\n")
    assert "Apply complete!" not in run.log
    assert writer.unwritten() == "Apply complete!\n"
    # A writer holding an older token finds nothing to write into either.
    assert not services.run_interrupt(run_id=run.pk, reason="again", fence=6)


# --- 3. the heartbeat survives database errors ---------------------------------------


class _FlakyWriter:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.recovered = threading.Event()
        self.run = TerraformRun(pk=0)

    def flush(self) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("server closed the connection unexpectedly")
        self.recovered.set()
        return True


def test_the_heartbeat_keeps_beating_after_database_errors(monkeypatch: Any) -> None:
    monkeypatch.setattr(logstream.Heartbeat, "INTERVAL", 0.01, raising=False)
    writer = _FlakyWriter(failures=2)
    with logstream.Heartbeat(writer):  # type: ignore[arg-type]
        assert writer.recovered.wait(timeout=10), "the heartbeat stopped after an error"
    assert writer.calls >= 3


# --- 4. log and outcome writes never lose data ---------------------------------------


def test_a_failed_chunk_insert_keeps_its_text_for_the_next_flush(
    monkeypatch: Any, no_dispatch: list[int]
) -> None:
    _ticket, run = _running_apply(minutes_silent=0, fence=3)
    RunLogChunk.objects.filter(run=run).delete()
    real_create = RunLogChunk.objects.create
    failures = [OperationalError("could not send data to server")]

    def flaky_create(**kwargs: Any) -> RunLogChunk:
        if failures:
            raise failures.pop()
        return real_create(**kwargs)

    monkeypatch.setattr(RunLogChunk.objects, "create", flaky_create)
    writer = logstream.LogWriter(run, fence=3)
    writer("line one")
    writer.flush()
    writer("line two")
    writer.flush()
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=3,
        log_tail=writer.unwritten(),
    )
    run.refresh_from_db()
    assert run.log == "line one\nline two\n"


def test_the_outcome_write_is_retried_until_the_database_answers(
    monkeypatch: Any, no_dispatch: list[int]
) -> None:
    _ticket, run = _running_apply(minutes_silent=0, fence=1)
    monkeypatch.setattr(outcome, "_FINISH_RETRY_DELAYS", (0, 0, 0), raising=False)
    real_audit = outcome.audit_record
    failures = [OperationalError("terminating connection due to administrator command")] * 2

    def flaky_audit(**kwargs: Any) -> Any:
        if failures and kwargs["action"] == "run.finish":
            raise failures.pop()
        return real_audit(**kwargs)

    monkeypatch.setattr(outcome, "audit_record", flaky_audit)
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=1,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.exit_code == 0
    assert AuditEvent.objects.filter(action="run.finish", data__run=run.pk).count() == 1


# --- 5. a run that finishes after being declared interrupted ---------------------------


def test_an_apply_that_finishes_after_being_marked_interrupted_records_its_real_outcome(
    no_dispatch: list[int],
) -> None:
    ticket, run = _running_apply(minutes_silent=0, fence=4)
    assert services.run_interrupt(run_id=run.pk, reason="its worker is gone", fence=4)
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=4,
        log_tail="Apply complete! Resources: 1 added, 0 changed, 0 destroyed.\n",
    )
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED  # the verdict stands; the facts are added
    assert run.exit_code == 0
    assert run.log.startswith("Applying...\n")
    assert "Apply complete! Resources: 1 added" in run.log
    assert "finished after the run was marked interrupted: it succeeded" in run.error
    event = AuditEvent.objects.get(ticket=ticket, action="run.finish_after_interrupt")
    assert event.data["exit_code"] == 0 and event.data["outcome"] == "succeeded"
    assert ticket.status == TicketStatus.APPLY_FAILED  # not resurrected automatically
    assert "may have applied the plan" in ticket.status_reason
    assert "run a new plan" in ticket.status_reason
    root = User.objects.create_superuser("root", "r@example.com", "pw")
    body = api_for(root).get(f"/api/v1/runs/{run.pk}/")
    assert body.status_code == 200 and body.json()["exit_code"] == 0
    assert "finished after the run was marked interrupted" in body.json()["error"]
    client = Client()
    client.force_login(root)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "finished after the run was marked interrupted: it succeeded" in page
    assert "may have applied the plan" in page


def test_a_nul_byte_in_terraform_output_neither_blocks_the_log_nor_loses_the_outcome(
    no_dispatch: list[int],
) -> None:
    """PostgreSQL refuses NUL in text: a line holding one (a provisioner printing binary)
    must not become a chunk that fails forever, nor an outcome that cannot be written."""
    ticket, run = _running_apply(minutes_silent=0, fence=5)
    RunLogChunk.objects.filter(run=run).delete()
    writer = logstream.LogWriter(run, fence=5)
    writer("binary \x00 output")
    assert writer.flush()  # written at once, not kept back
    writer("Apply complete!")
    assert writer.flush()
    services.run_finish(
        run_id=run.pk,
        exit_code=1,
        error="local-exec said \x00",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=5,
        log_tail="tail \x00\n",
    )
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.exit_code == 1
    assert run.log == "binary \ufffd output\nApply complete!\ntail \ufffd\n"
    assert run.error == "local-exec said \ufffd"
    assert ticket.status == TicketStatus.APPLY_FAILED
