"""A worker that dies mid-run leaves the run interrupted, never silently re-run or succeeded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, RunLogChunk
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db


def _running(kind: str, ticket_status: str, minutes_silent: int) -> Any:
    ticket = TicketFactory(status=ticket_status)
    plan = RunFactory(ticket=ticket) if kind != RunKind.PLAN else None
    if plan:
        plan.status = RunStatus.SUCCEEDED
        plan.save()
    beat = timezone.now() - dt.timedelta(minutes=minutes_silent)
    run = RunFactory(
        ticket=ticket,
        kind=kind,
        plan=plan,
        status=RunStatus.RUNNING,
        started_at=beat,
        heartbeat_at=beat,
    )
    RunLogChunk.objects.create(run=run, seq=1, start=0, text="Applying...\n")
    return ticket, run


def test_an_apply_whose_worker_is_gone_becomes_interrupted_with_recovery_instructions(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket, run = _running(RunKind.APPLY, TicketStatus.APPLYING, minutes_silent=10)
    result = services.runs_reconcile()
    assert result["interrupted"] == 1
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED and run.exit_code is None
    assert run.log.startswith("Applying...\n")  # the partial log is kept
    assert "force-unlock" in run.error and "run a new plan" in run.error
    assert ticket.status == TicketStatus.APPLY_FAILED
    assert ticket.status_reason == run.error
    assert AuditEvent.objects.filter(action="run.interrupt", ticket=ticket).exists()


def test_a_plan_with_a_recent_heartbeat_is_left_alone(monkeypatch: Any) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    _ticket, run = _running(RunKind.PLAN, TicketStatus.PLANNING, minutes_silent=1)
    assert services.runs_reconcile()["interrupted"] == 0
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_interrupted_plan_fails_the_ticket_so_it_can_be_planned_again(monkeypatch: Any) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket, _run = _running(RunKind.PLAN, TicketStatus.PLANNING, minutes_silent=10)
    services.runs_reconcile()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PLAN_FAILED
    assert "run a new plan" in ticket.status_reason


def test_a_late_finish_keeps_the_interrupted_verdict_and_records_the_outcome(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    _ticket, run = _running(RunKind.APPLY, TicketStatus.APPLYING, minutes_silent=10)
    services.runs_reconcile()
    services.run_finish(
        run_id=run.pk, exit_code=0, error="", plan=None, stale=False, terraform_version="1.11.4"
    )
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert run.exit_code == 0 and "finished after the run was marked interrupted" in run.error
    assert AuditEvent.objects.filter(action="run.finish_after_interrupt", ticket=_ticket).exists()


def test_duplicate_delivery_of_a_claimed_run_does_nothing(monkeypatch: Any) -> None:
    _ticket, run = _running(RunKind.APPLY, TicketStatus.APPLYING, minutes_silent=0)
    called: list[str] = []
    monkeypatch.setattr("deployments.terraform.apply", lambda *a, **k: called.append("apply"))
    services.run_execute(run_id=run.pk, worker="second-delivery")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.worker != "second-delivery"
    assert called == []


def test_queued_runs_nobody_picked_up_are_sent_again(monkeypatch: Any) -> None:
    sent: list[int] = []
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: sent.append(run_id))
    ticket = TicketFactory(status=TicketStatus.PLANNING)
    run = RunFactory(ticket=ticket, status=RunStatus.QUEUED)
    assert services.runs_reconcile()["resent"] == 0  # just queued: give the worker time
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=2)):
        assert services.runs_reconcile()["resent"] == 1
    assert sent == [run.pk]
