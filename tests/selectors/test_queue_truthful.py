"""Issue 22: each queue of "what needs me" lists exactly what the person can do now, with
the reason and the deadline (home page and GET /api/v1/me/queue/ alike)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import TicketStatus
from deployments.models import (
    Approval,
    ChecklistItem,
    Environment,
    FollowUp,
    MonitoringPeriod,
    Ticket,
)
from deployments.selectors.queue import queue_for
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.pages import signed_in
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db

# Prod's window: Tuesdays and Thursdays 02:00-04:00 America/New_York.
OUTSIDE = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # Mon 07:00 EST: opens in 19 h


def env(name: str) -> Environment:
    return Environment.objects.get(name=name)


def vote(ticket: Ticket, user: User, role: str) -> Approval:
    plan = ticket.current_plan
    assert plan is not None
    return Approval.objects.create(
        ticket=ticket,
        approver=user,
        role=role,
        held_roles=[role],
        plan_run=plan,
        plan_sha256=plan.plan_sha256,
    )


def immediate_rollback(author: User, lead: User, *, until: dt.datetime) -> Ticket:
    ticket = awaiting(
        "prod",
        author,
        title="Roll back #7",
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=until,
    )
    vote(ticket, lead, "tech_lead")
    ticket.status = TicketStatus.APPROVED
    ticket.save()
    return ticket


def section(page: str, name: str) -> str:
    start = page.index(f'id="queue-{name}"')
    return page[start : page.index("</section>", start)]


# --- an approved immediate rollback deploys now ----------------------------------------


def test_an_approved_immediate_rollback_is_deployable_now_outside_the_window(
    author: User, tech_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = immediate_rollback(author, tech_lead, until=OUTSIDE + dt.timedelta(minutes=40))
        item = queue_for(operations, timezone.now()).deploys[0]
        page = signed_in(operations).get("/").content.decode()
    assert item.ticket.pk == ticket.pk
    assert item.may_start_now and item.reason == ""
    assert item.deadline == OUTSIDE + dt.timedelta(minutes=40)
    assert "may deploy now, outside any window" in item.countdown
    assert "window opens" not in item.countdown
    deploys = section(page, "deploys")
    assert "deploy now" in deploys and "window opens" not in deploys


def test_past_its_hour_the_rollback_says_what_it_needs(
    author: User, tech_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        immediate_rollback(author, tech_lead, until=OUTSIDE - dt.timedelta(minutes=1))
        item = queue_for(operations, timezone.now()).deploys[0]
    assert not item.may_start_now
    assert "hour ended" in item.reason and "still needs" in item.reason


# --- operations' monitoring work --------------------------------------------------------


def monitored(author: User, *, ends_in: dt.timedelta, open_items: int) -> Ticket:
    ticket = TicketFactory(environment=env("prod"), author=author, status=TicketStatus.MONITORING)
    now = timezone.now()
    MonitoringPeriod.objects.create(
        ticket=ticket, started_at=now - dt.timedelta(minutes=5), ends_at=now + ends_in
    )
    for n in range(2):
        ChecklistItem.objects.create(
            ticket=ticket,
            key=f"item-{n}",
            label=f"Item {n}",
            position=n,
            signed_at=None if n < open_items else now,
        )
    return ticket


def test_operations_get_a_monitoring_section_with_what_is_left(
    author: User, operations: User, tech_lead: User
) -> None:
    running = monitored(author, ends_in=dt.timedelta(minutes=30), open_items=2)
    done = monitored(author, ends_in=-dt.timedelta(minutes=1), open_items=0)
    ChecklistItem.objects.filter(ticket=done).update(signed_by=operations)
    queue = queue_for(operations, timezone.now())
    assert queue.sections.monitoring and queue.monitoring_count == 2
    first, second = queue.monitoring
    assert (
        first.ticket.pk == done.pk and first.may_complete and first.reason == "ready: complete it"
    )
    assert second.ticket.pk == running.pk and not second.may_complete
    assert second.open_items == ("Item 0", "Item 1")
    assert "2 checklist items are still open" in second.reason
    assert queue.waiting == 2
    # Not a lead's work.
    assert not queue_for(tech_lead, timezone.now()).sections.monitoring
    body = api_for(operations).get("/api/v1/me/queue/").json()
    assert "monitoring" in body["sections"] and body["monitoring"]["count"] == 2
    assert body["monitoring"]["results"][0]["may_complete"] is True
    page = signed_in(operations).get("/").content.decode()
    rows = section(page, "monitoring")
    assert rows.count("<tr>") - 1 == 2 and "complete it" in rows


# --- follow-ups before they are overdue --------------------------------------------------


def test_follow_ups_due_within_a_day_are_listed_with_their_due_time(
    author: User, tech_lead: User
) -> None:
    done = TicketFactory(environment=env("prod"), author=author, status="completed")
    now = OUTSIDE
    for hours in (-2, 3, 20, 30):
        FollowUp.objects.create(
            ticket=done, kind="post_mortem", due_at=now + dt.timedelta(hours=hours)
        )
    traveller = time_machine.travel(now, tick=False)
    traveller.start()
    queue = queue_for(tech_lead, now)
    assert queue.follow_ups_count == 1 and queue.follow_ups[0].overdue
    assert queue.follow_ups_due_soon_count == 2
    assert [round(i.due_in.total_seconds() / 3600) for i in queue.follow_ups_due_soon] == [3, 20]
    body = api_for(tech_lead).get("/api/v1/me/queue/").json()
    assert body["follow_ups_due_soon"]["count"] == 2
    assert body["follow_ups_due_soon"]["results"][0]["overdue_seconds"] < 0
    page = signed_in(tech_lead).get("/").content.decode()
    rows = section(page, "follow-ups")
    assert '<span class="badge badge-overdue">3</span>' in rows
    traveller.stop()
    assert "overdue by 2 h<" in rows and "due in 3 h<" in rows and "due in 20 h<" in rows


# --- approvals: only what the lead can approve now ----------------------------------------


def test_a_ticket_blocked_by_the_promotion_gate_is_not_waiting_for_the_lead(
    author: User, tech_lead: User
) -> None:
    blocked = awaiting("prod", author, title="Not promoted")
    queue = queue_for(tech_lead, timezone.now())
    assert queue.approvals_count == 0 and queue.waiting == 0
    assert [b.ticket.pk for b in queue.approvals_blocked] == [blocked.pk]
    assert "staging" in queue.approvals_blocked[0].reason
    # The approve action refuses it for the same reason.
    plan = blocked.current_plan
    assert plan is not None
    refused = api_for(tech_lead).post(
        f"/api/v1/tickets/{blocked.pk}/approve/", {"plan_sha256": plan.plan_sha256}, format="json"
    )
    assert refused.status_code in (403, 409)
    page = signed_in(tech_lead).get("/").content.decode()
    approvals = section(page, "approvals")
    assert '<span class="badge">0</span>' in approvals and "Not yet approvable (1)" in approvals
    body = api_for(tech_lead).get("/api/v1/me/queue/").json()
    assert body["approvals_blocked"]["count"] == 1 and body["approvals"]["count"] == 0


@pytest.mark.usefixtures("without_promotion_gate")
def test_approval_rows_say_who_else_is_needed(author: User, tech_lead: User) -> None:
    awaiting("prod", author, title="Two leads")
    item = queue_for(tech_lead, timezone.now()).approvals[0]
    assert item.reason == "needs a DevOps Lead and a Tech Lead" or "DevOps Lead" in item.reason


# --- counts equal rows ---------------------------------------------------------------------


def test_my_tickets_count_heads_exactly_its_rows(author: User) -> None:
    for n in range(3):
        TicketFactory(environment=env("dev"), author=author, title=f"Open {n}")
    for n in range(5):
        TicketFactory(environment=env("dev"), author=author, title=f"Done {n}", status="completed")
    page = signed_in(author).get("/").content.decode()
    mine = section(page, "mine")
    open_part, finished_part = mine.split('id="queue-mine-finished"')
    assert '<span class="badge">3</span>' in open_part and open_part.count("Open ") == 3
    assert "Done " not in open_part
    assert '<span class="badge">5</span>' in finished_part and finished_part.count("Done ") == 5


# --- the nav badge follows writes -----------------------------------------------------------


@pytest.mark.usefixtures("without_promotion_gate")
def test_the_nav_badge_is_fresh_right_after_acting(
    author: User, tech_lead: User, devops_lead: User, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = awaiting("prod", author)
    client = signed_in(tech_lead)
    assert 'id="queue-badge" title="Things waiting for you">1<' in client.get("/").content.decode()
    plan = ticket.current_plan
    assert plan is not None
    with django_capture_on_commit_callbacks(execute=True):
        approved = api_for(tech_lead).post(
            f"/api/v1/tickets/{ticket.pk}/approve/",
            {"plan_sha256": plan.plan_sha256},
            format="json",
        )
    assert approved.status_code == 200, approved.content
    # Well within QUEUE_BADGE_MAX_AGE: the write alone makes the next page recount.
    page = client.get("/environments/").content.decode()
    assert 'id="queue-badge"' not in page  # 0: no badge (it said 1 before the write)


# --- a stale scheduled plan is not "Scheduled · starts in" ---------------------------------


def test_a_scheduled_ticket_whose_plan_went_stale_says_so(author: User, operations: User) -> None:
    with time_machine.travel(OUTSIDE - dt.timedelta(hours=1), tick=False):
        ticket = awaiting("prod", author, title="Scheduled one")
        ticket.status = TicketStatus.SCHEDULED
        ticket.scheduled_for = OUTSIDE + dt.timedelta(hours=20)
        ticket.save()
        plan = ticket.current_plan
        assert plan is not None
        plan.finished_at = timezone.now()
        plan.save()
    with time_machine.travel(OUTSIDE - dt.timedelta(minutes=30), tick=False):
        other = TicketFactory(environment=env("prod"), author=author, status="completed")
        DeploymentFactory(ticket=other, finished_at=timezone.now())
    with time_machine.travel(OUTSIDE, tick=False):
        item = queue_for(operations, timezone.now()).deploys[0]
        page = signed_in(operations).get("/").content.decode()
    assert item.stale and not item.may_start_now
    assert item.countdown == "plan stale: re-plan and re-schedule"
    deploys = section(page, "deploys")
    assert "stale" in deploys and "starts in" not in deploys


def test_the_approving_lead_finds_the_rollback_to_start_where_leads_start_them(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = immediate_rollback(author, tech_lead, until=OUTSIDE + dt.timedelta(minutes=40))
        assert not queue_for(tech_lead, timezone.now()).deploys
        Environment.objects.filter(name="prod").update(immediate_rollback_start="approver")
        queue = queue_for(tech_lead, timezone.now())
        assert queue.sections.deploys and queue.deploys[0].ticket.pk == ticket.pk
        assert queue.deploys[0].may_start_now
        # Another lead who did not approve it: nothing to start.
        assert not queue_for(devops_lead, timezone.now()).deploys
