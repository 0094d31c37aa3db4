"""Issue 22, stale scheduled plans: the people who scheduled a ticket are told the moment
another deploy makes its plan stale, and "re-plan and re-schedule" keeps the slot across
the new plan's approval; a slot is never dropped silently."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments import policy, services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, PendingReschedule, TerraformRun, Ticket
from deployments.services import approvals, replans, schedules
from notifications.models import Notification
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # Monday 07:00 in New York
SLOT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 03:00: inside prod's window


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def approve(ticket: Ticket, *leads: User) -> None:
    for lead in leads:
        plan = Ticket.objects.get(pk=ticket.pk).current_plan
        assert plan is not None
        services.approval_grant(ticket_id=ticket.pk, actor=lead, plan_sha256=plan.plan_sha256)


def scheduled(author: User, tech_lead: User, devops_lead: User, operations: User) -> Ticket:
    ticket = awaiting("prod", author, title="Resize the cache")
    plan = ticket.current_plan
    assert plan is not None
    plan.finished_at = NOW - dt.timedelta(hours=1)
    plan.save()
    approve(ticket, tech_lead, devops_lead)
    schedules.ticket_schedule(ticket_id=ticket.pk, actor=operations, at=SLOT)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SCHEDULED
    return ticket


def another_deploy(author: User) -> TerraformRun:
    other = TicketFactory(
        environment=Environment.objects.get(name="prod"), author=author, status="monitoring"
    )
    deployment = DeploymentFactory(ticket=other, finished_at=NOW - dt.timedelta(minutes=5))
    return deployment.run


def test_the_scheduler_is_told_the_moment_the_plan_goes_stale(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = scheduled(author, tech_lead, devops_lead, operations)
    run = another_deploy(author)
    replans.schedules_plan_stale(run.ticket, run)
    replans.schedules_plan_stale(run.ticket, run)  # a second look tells nobody again
    events = AuditEvent.objects.filter(ticket=ticket, action="schedule.plan_stale")
    assert events.count() == 1
    assert events.get().data["told"] == ["opal"] and events.get().data["by_run"] == run.pk
    told = Notification.objects.filter(event="schedule.plan_stale", ticket=ticket)
    assert told.exists() and "Re-plan and re-schedule" in told.first().body  # type: ignore[union-attr]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SCHEDULED and ticket.scheduled_for == SLOT


def test_the_after_apply_steps_include_the_warning() -> None:
    from deployments.services import lifecycle

    assert replans.schedules_plan_stale in lifecycle.after_apply
    assert replans.schedule_carry in lifecycle.after_plan


def finish_plan(ticket: Ticket, *, changes: tuple[int, int, int] = (0, 0, 0)) -> TerraformRun:
    """What the worker does when the new plan succeeds (the approval route included)."""
    run = TerraformRun.objects.filter(ticket=ticket, kind=RunKind.PLAN).latest("pk")
    run.status = RunStatus.SUCCEEDED
    run.finished_at = NOW
    run.plan_sha256 = hashlib.sha256(b"new-plan-%d" % run.pk).hexdigest()
    add, change, destroy = changes
    run.summary = {"add": add, "change": change, "destroy": destroy, "resources": []}
    run.save()
    ticket = Ticket.objects.get(pk=ticket.pk)
    ticket.current_plan = run
    ticket.save()
    approvals.approval_route(ticket, run)
    replans.schedule_carry(ticket, run)
    return run


def test_replan_and_reschedule_keeps_the_slot_once_approved_again(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = scheduled(author, tech_lead, devops_lead, operations)
    another_deploy(author)
    replans.ticket_replan_reschedule(ticket_id=ticket.pk, actor=author)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PLANNING
    assert PendingReschedule.objects.get(ticket=ticket).at == SLOT
    assert AuditEvent.objects.filter(ticket=ticket, action="schedule.replan").exists()
    finish_plan(ticket)  # +0 ~0 -0 still needs both leads (the process document)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL and ticket.scheduled_for is None
    pending = AuditEvent.objects.get(ticket=ticket, action="schedule.pending")
    assert pending.data["changes"] == "+0 ~0 -0" and pending.data["told"] == ["opal"]
    note = Notification.objects.filter(event="schedule.carried", ticket=ticket).first()
    assert note is not None and "still needs its approvals" in note.body
    approve(ticket, tech_lead, devops_lead)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SCHEDULED and ticket.scheduled_for == SLOT
    assert not PendingReschedule.objects.filter(ticket=ticket).exists()
    kept = AuditEvent.objects.filter(ticket=ticket, action="ticket.schedule").latest("pk")
    assert kept.data["kept_from_replan"] is True and kept.data["on_behalf_of"] == "opal"


def test_a_slot_that_can_no_longer_be_kept_is_dropped_aloud(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = scheduled(author, tech_lead, devops_lead, operations)
    replans.ticket_replan_reschedule(ticket_id=ticket.pk, actor=author)
    finish_plan(ticket, changes=(1, 0, 0))
    with time_machine.travel(SLOT + dt.timedelta(hours=3), tick=False):
        approve(ticket, tech_lead, devops_lead)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and ticket.scheduled_for is None
    dropped = AuditEvent.objects.get(ticket=ticket, action="schedule.dropped")
    assert "passed" in dropped.data["reason"] and dropped.data["told"] == ["opal"]
    note = Notification.objects.filter(event="schedule.carried", ticket=ticket).latest("pk")
    assert "could not be kept" in note.body


def test_a_plain_replan_of_a_scheduled_ticket_keeps_the_slot_too(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = scheduled(author, tech_lead, devops_lead, operations)
    services.ticket_plan(ticket_id=ticket.pk, actor=author, reason="pick up the new module")
    finish_plan(ticket, changes=(0, 1, 0))
    assert PendingReschedule.objects.get(ticket=ticket).at == SLOT
    assert AuditEvent.objects.filter(ticket=ticket, action="schedule.pending").exists()


def test_only_a_scheduled_ticket_is_replanned_and_rescheduled(
    author: User, tech_lead: User
) -> None:
    ticket = awaiting("prod", author)
    with pytest.raises(policy.PolicyError, match="only a scheduled ticket"):
        replans.ticket_replan_reschedule(ticket_id=ticket.pk, actor=author)
    assert not PendingReschedule.objects.exists()


def test_the_api_and_the_page_offer_it(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from django.test import Client

    from tests.helpers.api import api_for

    ticket = scheduled(author, tech_lead, devops_lead, operations)
    another_deploy(author)
    client = Client()
    client.force_login(author)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="replan-reschedule"' in page
    response = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/replan-reschedule/", {}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "planning"
    again = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/replan-reschedule/", {}, format="json"
    )
    assert again.status_code == 409


def test_the_ticket_list_the_calendar_and_the_feed_say_stale(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from django.test import Client

    from deployments.pages.calendar import feed_ics
    from deployments.selectors.calendar import calendar_entries

    ticket = scheduled(author, tech_lead, devops_lead, operations)
    client = Client()
    client.force_login(operations)
    assert "stale plan" not in client.get("/tickets/").content.decode()
    another_deploy(author)
    listing = client.get("/tickets/").content.decode()
    row = listing[listing.index(f'href="/tickets/{ticket.pk}/"') :]
    assert "stale plan" in row[: row.index("</tr>")]
    entry = next(
        e
        for e in calendar_entries(operations, NOW, NOW + dt.timedelta(days=7))
        if e.kind == "scheduled"
    )
    assert entry.stale and "plan stale" in entry.text
    calendar = client.get("/calendar/?month=2026-12").content.decode()
    assert "stale plan" in calendar
    feed = feed_ics(operations, Environment.objects.get(name="prod"), NOW).decode()
    assert f"STALE PLAN: #{ticket.pk}" in feed.replace("\r\n ", "")


def test_a_failed_apply_that_changed_the_state_warns_too(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from deployments.services.runs import outcome

    ticket = scheduled(author, tech_lead, devops_lead, operations)
    other = TicketFactory(
        environment=Environment.objects.get(name="prod"), author=author, status="applying"
    )
    deployment = DeploymentFactory(
        ticket=other, outcome="failed", finished_at=NOW - dt.timedelta(minutes=5)
    )
    deployment.state_after = "changed-by-the-failed-apply"
    deployment.save()
    outcome._advance_ticket(other, deployment.run)
    assert AuditEvent.objects.filter(ticket=ticket, action="schedule.plan_stale").exists()
