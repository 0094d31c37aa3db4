"""The ticket timeline's steps past the approvals (selectors/timeline.py): the Scheduled
step, Monitoring and Completed, and each way a ticket ends (Rolled back, Rejected,
Cancelled, Apply failed), read from what the portal records (the services' audited
transitions, the runs), and the times on the page in the viewer's zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from deployments import selectors, services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import TerraformRun, Ticket
from deployments.services import accounts, schedules
from deployments.services._base import transition
from tests.helpers.factories import RunFactory
from tests.helpers.html import visible_text
from tests.helpers.pages import login
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

FILED = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # Monday 07:00 in New York
SLOT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 03:00: in prod's window


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(FILED, tick=False) as traveller:
        yield traveller


def _steps(ticket: Ticket, viewer: User) -> dict[str, Any]:
    view = selectors.ticket_view(Ticket.objects.get(pk=ticket.pk), viewer, timezone.now())
    return {s.key: s for s in view.timeline}


def _keys(ticket: Ticket, viewer: User) -> list[str]:
    return list(_steps(ticket, viewer))


def _approved(author: User, *leads: User) -> Ticket:
    """A prod ticket whose plan (42 s, finished at FILED) both leads approved 10 min later."""
    ticket = awaiting("prod", author, title="Resize the cache")
    plan = ticket.current_plan
    assert plan is not None
    TerraformRun.objects.filter(pk=plan.pk).update(
        started_at=FILED - dt.timedelta(seconds=42), finished_at=FILED
    )
    with time_machine.travel(FILED + dt.timedelta(minutes=10), tick=False):
        for lead in leads:
            services.approval_grant(ticket_id=ticket.pk, actor=lead, plan_sha256=plan.plan_sha256)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED
    return ticket


def _scheduled(author: User, tech_lead: User, devops_lead: User, operations: User) -> Ticket:
    ticket = _approved(author, tech_lead, devops_lead)
    with time_machine.travel(FILED + dt.timedelta(minutes=20), tick=False):
        schedules.ticket_schedule(ticket_id=ticket.pk, actor=operations, at=SLOT)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SCHEDULED
    return ticket


def _apply(ticket: Ticket, clock: Any, *, ok: bool = True, minutes: int = 3) -> TerraformRun:
    """The scheduler starts the apply at SLOT; the worker finishes it ``minutes`` later:
    prod then watches (monitoring), or the ticket ends apply_failed."""
    clock.move_to(SLOT)
    transition(ticket, TicketStatus.APPLYING, actor="scheduler", reason="window open")
    run = RunFactory(
        ticket=ticket,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED if ok else RunStatus.FAILED,
        plan=ticket.current_plan,
        started_at=SLOT,
        finished_at=SLOT + dt.timedelta(minutes=minutes),
        error="" if ok else "Error: creating ElastiCache cluster: quota exceeded",
    )
    clock.move_to(SLOT + dt.timedelta(minutes=minutes))
    if ok:
        transition(ticket, TicketStatus.MONITORING, actor="worker", reason="applied; watching")
    else:
        transition(ticket, TicketStatus.APPLY_FAILED, actor="worker", reason="apply failed")
    return run


def test_a_scheduled_ticket_shows_who_scheduled_it_and_for_when(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    steps = _steps(ticket, operations)
    assert list(steps) == [
        "filed",
        "planned",
        "checks",
        "approvals",
        "scheduled",
        "applied",
        "monitoring",
        "end",
    ]
    approvals = steps["approvals"]
    assert approvals.state == "done" and approvals.took == dt.timedelta(minutes=10)
    assert "tess (Tech Lead)" in approvals.who and "otto (DevOps Lead)" in approvals.who
    scheduled = steps["scheduled"]
    assert (scheduled.state, scheduled.state_label) == ("current", "in progress")
    assert (scheduled.who, scheduled.at, scheduled.detail) == ("opal", SLOT, "window start")
    assert steps["applied"].state == "pending"
    assert steps["monitoring"].state == "pending"
    assert (steps["end"].label, steps["end"].state) == ("Completed", "pending")


def test_an_approved_ticket_never_scheduled_has_no_scheduled_step(
    clock: Any, author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = _approved(author, tech_lead, devops_lead)
    assert "scheduled" not in _keys(ticket, tech_lead)


def test_monitoring_then_completed(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    _apply(ticket, clock)
    clock.move_to(SLOT + dt.timedelta(minutes=33))
    steps = _steps(ticket, operations)
    assert steps["scheduled"].state == "done" and steps["scheduled"].at == SLOT
    applied = steps["applied"]
    assert (applied.state, applied.took) == ("done", dt.timedelta(minutes=3))
    assert applied.who == "the portal"  # the scheduler started it
    assert applied.at == SLOT + dt.timedelta(minutes=3)
    monitoring = steps["monitoring"]
    assert (monitoring.state, monitoring.at) == ("current", SLOT + dt.timedelta(minutes=3))
    assert monitoring.took == dt.timedelta(minutes=30)  # so far
    assert (steps["end"].label, steps["end"].state) == ("Completed", "pending")

    clock.move_to(SLOT + dt.timedelta(minutes=63))
    transition(
        ticket,
        TicketStatus.COMPLETED,
        actor=operations,
        reason="completed by opal after monitoring; checklist signed",
    )
    clock.move_to(SLOT + dt.timedelta(days=2))  # read later: nothing runs on
    steps = _steps(ticket, operations)
    monitoring = steps["monitoring"]
    assert (monitoring.state, monitoring.took) == ("done", dt.timedelta(hours=1))
    end = steps["end"]
    assert (end.label, end.state, end.who) == ("Completed", "done", "opal")
    assert end.at == SLOT + dt.timedelta(minutes=63)
    assert end.took == end.at - ticket.created_at
    assert end.detail == "completed by opal after monitoring; checklist signed"


def test_rolled_back_after_it_completed(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    _apply(ticket, clock)
    clock.move_to(SLOT + dt.timedelta(minutes=63))
    transition(ticket, TicketStatus.COMPLETED, actor=operations, reason="completed")
    clock.move_to(SLOT + dt.timedelta(days=1))
    reason = f"rolled back by ticket #{ticket.pk + 1}: prod is back at commit 0123456789ab"
    transition(ticket, TicketStatus.ROLLED_BACK, actor="worker", reason=reason)
    steps = _steps(ticket, operations)
    # Monitoring ended when the ticket completed, not when it was rolled back a day later.
    assert (steps["monitoring"].state, steps["monitoring"].took) == ("done", dt.timedelta(hours=1))
    end = steps["end"]
    assert (end.label, end.state, end.state_label) == ("Rolled back", "failed", "failed")
    assert (end.who, end.at, end.detail) == ("worker", SLOT + dt.timedelta(days=1), reason)
    assert end.took is None


def test_rolled_back_after_a_failed_apply_waits_for_nothing(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    _apply(ticket, clock, ok=False)
    clock.move_to(SLOT + dt.timedelta(hours=1))
    transition(ticket, TicketStatus.ROLLED_BACK, actor="worker", reason="rolled back")
    steps = _steps(ticket, operations)
    assert steps["applied"].state == "failed"
    # The ticket has ended: no "Monitoring: not yet".
    assert "monitoring" not in steps
    assert (steps["end"].label, steps["end"].state) == ("Rolled back", "failed")


def test_apply_failed(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    _apply(ticket, clock, ok=False, minutes=2)
    steps = _steps(ticket, operations)
    applied = steps["applied"]
    assert (applied.state, applied.took) == ("failed", dt.timedelta(minutes=2))
    assert applied.detail == "Error: creating ElastiCache cluster: quota exceeded"
    end = steps["end"]
    assert (end.label, end.state, end.who) == ("Apply failed", "failed", "worker")
    assert (end.at, end.detail) == (SLOT + dt.timedelta(minutes=2), "apply failed")
    # It may still be re-planned and applied: monitoring is still ahead.
    assert steps["monitoring"].state == "pending"


def test_a_check_that_fails_while_monitoring_fails_the_monitoring_step(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    _apply(ticket, clock)
    clock.move_to(SLOT + dt.timedelta(minutes=13))
    transition(ticket, TicketStatus.APPLY_FAILED, actor="worker", reason="check smoke failed")
    steps = _steps(ticket, operations)
    assert steps["applied"].state == "done"
    monitoring = steps["monitoring"]
    assert (monitoring.state, monitoring.took) == ("failed", dt.timedelta(minutes=10))
    end = steps["end"]
    assert (end.label, end.state, end.detail) == ("Apply failed", "failed", "check smoke failed")


def test_rejected(clock: Any, author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = awaiting("prod", author, title="Drop the old queue")
    plan = ticket.current_plan
    assert plan is not None
    services.approval_grant(ticket_id=ticket.pk, actor=tech_lead, plan_sha256=plan.plan_sha256)
    clock.move_to(FILED + dt.timedelta(hours=1))
    services.ticket_reject(ticket_id=ticket.pk, actor=devops_lead, reason="the queue is in use")
    steps = _steps(ticket, author)
    approvals = steps["approvals"]
    assert (approvals.state, approvals.detail) == ("failed", "rejected")
    assert approvals.who == "tess (Tech Lead)"
    assert "scheduled" not in steps and "monitoring" not in steps
    assert steps["applied"].state == "pending"
    end = steps["end"]
    assert (end.label, end.state, end.who) == ("Rejected", "failed", "otto")
    assert end.at == FILED + dt.timedelta(hours=1)
    assert end.detail == "rejected by otto: the queue is in use"


def test_cancelled(clock: Any, author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = _approved(author, tech_lead, devops_lead)
    clock.move_to(FILED + dt.timedelta(hours=2))
    services.ticket_cancel(ticket_id=ticket.pk, actor=author, reason="done another way")
    steps = _steps(ticket, author)
    assert steps["approvals"].state == "done"
    assert "scheduled" not in steps and "monitoring" not in steps
    end = steps["end"]
    assert (end.label, end.state, end.who) == ("Cancelled", "failed", "alice")
    assert (end.at, end.detail) == (FILED + dt.timedelta(hours=2), "done another way")


def test_the_timeline_reads_in_the_viewers_zone(
    clock: Any, author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    """Every time on the timeline is in the viewer's zone (their settings), UTC on hover."""
    ticket = _scheduled(author, tech_lead, devops_lead, operations)
    accounts.timezone_preference_set(actor=operations, zone="Asia/Kolkata", chosen=True)
    page = login(operations.username).get(f"/tickets/{ticket.pk}/").content.decode()
    timeline = page[page.index('<section id="timeline"') :].split("</section>")[0]
    scheduled = timeline[timeline.index('id="tl-scheduled"') :].split("</li>")[0]
    assert (
        '<time datetime="2026-12-01T08:00:00Z" title="2026-12-01 08:00 UTC">'
        "2026-12-01 13:30 IST</time>" in scheduled
    )
    approvals = timeline[timeline.index('id="tl-approvals"') :].split("</li>")[0]
    assert "2026-11-30 17:40 IST" in visible_text(approvals)  # 12:10 UTC
    assert "UTC" not in visible_text(timeline)
