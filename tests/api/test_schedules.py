"""Scheduling through the API (200/400/403/404/409), freezes, stale plans, conflicts, and the
beat task's pass run in-process under time-machine (the real-worker runs are in
test_schedules_worker.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, Freeze, TerraformRun, Ticket
from deployments.services import schedules
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory
from tests.helpers.html import visible_text
from tests.helpers.tickets import approved

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

UTC = dt.UTC
OUTSIDE = "2026-11-24 12:00:00+00:00"  # Tue 07:00 New York (EST)
THU_OPEN = dt.datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # Thu 02:00 EST


def prod_ticket(author: User, tech_lead: User, devops_lead: User) -> Ticket:
    return approved("prod", author, tech_lead, devops_lead)


def schedule(user: User, ticket: Ticket, body: object) -> object:
    return api_for(user).post(f"/api/v1/tickets/{ticket.pk}/schedule/", body, format="json")


@time_machine.travel(OUTSIDE, tick=False)
def test_next_window_in_one_call(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    response = schedule(operations, ticket, {"next_window": True})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "scheduled"
    assert dt.datetime.fromisoformat(body["scheduled_for"]) == THU_OPEN
    assert body["status_reason"] == "scheduled for Thu 26 Nov 02:00 EST (07:00 UTC)"
    assert body["plan_stale"] is False and body["schedule_conflict"] is None
    actions = list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True))
    assert "ticket.schedule" in actions


@time_machine.travel(OUTSIDE, tick=False)
def test_at_inside_a_window_and_unschedule(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    at = "2026-11-26T03:15:00-05:00"
    response = schedule(operations, ticket, {"at": at})
    assert response.status_code == 200
    assert dt.datetime.fromisoformat(response.json()["scheduled_for"]) == dt.datetime.fromisoformat(
        at
    )
    back = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/unschedule/")
    assert back.status_code == 200
    assert back.json()["status"] == "approved" and back.json()["scheduled_for"] is None
    again = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/unschedule/")
    assert again.status_code == 409 and again.json()["detail"] == "the ticket is not scheduled"


@time_machine.travel(OUTSIDE, tick=False)
def test_409_outside_any_window_names_the_next_one(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    response = schedule(operations, ticket, {"at": "2026-11-26T04:00:00-05:00"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Thu 26 Nov 04:00 EST (09:00 UTC) is outside prod's change window "
        "(Tue/Thu 02:00\u201304:00 America/New_York); the next window opens "
        "Tue 01 Dec 02:00 EST (07:00 UTC), in 4 days 22 h"
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and ticket.scheduled_for is None


@time_machine.travel(OUTSIDE, tick=False)
def test_409_during_a_freeze_and_next_window_skips_it(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    Freeze.objects.create(
        environment=Environment.objects.get(name="prod"),
        starts_at=THU_OPEN - dt.timedelta(hours=1),
        ends_at=THU_OPEN + dt.timedelta(hours=3),
        reason="product launch",
    )
    response = schedule(operations, ticket, {"at": "2026-11-26T02:30:00-05:00"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith(
        "prod is frozen from Thu 26 Nov 01:00 EST (06:00 UTC) until Thu 26 Nov 05:00 EST "
        "(10:00 UTC) (product launch); the next window opens Tue 01 Dec 02:00 EST"
    )
    ok = schedule(operations, ticket, {"next_window": True})
    assert ok.status_code == 200
    assert ok.json()["scheduled_for"].startswith("2026-12-01T07:00:00")


@time_machine.travel(OUTSIDE, tick=False)
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"next_window": False},
        {"at": "2026-11-26T07:30:00Z", "next_window": True},
        {"at": "next thursday"},
        {"at": 12},
        {"next_window": "sometimes"},
    ],
)
def test_400_for_bad_input(
    author: User, tech_lead: User, devops_lead: User, operations: User, body: object
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    response = schedule(operations, ticket, body)
    assert response.status_code == 400, response.json()
    assert "detail" in response.json()
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPROVED


@time_machine.travel(OUTSIDE, tick=False)
def test_403_for_who_may_not_deploy_and_404_outside_scope(
    author: User, tech_lead: User, devops_lead: User, outsider: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    refused = schedule(tech_lead, ticket, {"next_window": True})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "prod deploys are done (and scheduled) by Operations"
    assert schedule(outsider, ticket, {"next_window": True}).status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPROVED


@time_machine.travel(OUTSIDE, tick=False)
def test_409_not_approved(author: User, operations: User) -> None:
    from tests.helpers.tickets import awaiting

    ticket = awaiting("prod", author)
    response = schedule(operations, ticket, {"next_window": True})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "only an approved ticket can be scheduled; this one is awaiting approval"
    )


@time_machine.travel(OUTSIDE, tick=False)
def test_stale_plan_is_shown_and_refused(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    assert api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()["plan_stale"] is False
    other = prod_ticket(author, tech_lead, devops_lead)
    RunFactory(
        ticket=other,
        plan=other.current_plan,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        finished_at=dt.datetime(2026, 11, 24, 11, 59, tzinfo=UTC) + dt.timedelta(days=0),
    )
    TerraformRun.objects.filter(pk=ticket.current_plan_id).update(
        finished_at=dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    )
    detail = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["plan_stale"] is True
    response = schedule(operations, ticket, {"next_window": True})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("stale \u2014 re-plan needed")
    with time_machine.travel("2026-11-26 07:30:00+00:00", tick=False):
        deploy = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert deploy.status_code == 409 and deploy.json()["detail"].startswith("stale")


@pytest.mark.parametrize(
    ("outcome", "state_after", "stale"),
    [
        ("failed", "lineage-a/8", True),  # stopped half-way: the state moved on
        ("failed", "", True),  # the state it left is unknown
        ("failed", "lineage-a/7", False),  # failed before touching the state
        ("interrupted", None, True),  # nobody knows what it did
        ("refused", None, False),  # refused before Terraform ran: no deployment, no change
    ],
)
def test_a_failed_or_interrupted_apply_makes_a_plan_stale_unless_the_state_is_unchanged(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    outcome: str,
    state_after: str | None,
    stale: bool,
) -> None:
    ticket = prod_ticket(author, tech_lead, devops_lead)
    TerraformRun.objects.filter(pk=ticket.current_plan_id).update(
        base_state="lineage-a/7", finished_at=timezone.now() - dt.timedelta(hours=1)
    )
    other = prod_ticket(author, tech_lead, devops_lead)
    if state_after is None:
        RunFactory(
            ticket=other,
            plan=other.current_plan,
            kind=RunKind.APPLY,
            status=RunStatus.INTERRUPTED if outcome == "interrupted" else RunStatus.FAILED,
            finished_at=timezone.now(),
        )
    else:
        DeploymentFactory(ticket=other, outcome=outcome, state_after=state_after)
    detail = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["plan_stale"] is stale


@time_machine.travel(OUTSIDE, tick=False)
def test_two_tickets_in_one_window_are_a_conflict_shown_on_both_with_their_order(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    first = prod_ticket(author, tech_lead, devops_lead)
    second = prod_ticket(author, tech_lead, devops_lead)
    assert schedule(operations, second, {"at": "2026-11-26T02:30:00-05:00"}).status_code == 200
    assert schedule(operations, first, {"next_window": True}).status_code == 200
    for ticket, position in ((first, 1), (second, 2)):
        conflict = (
            api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()["schedule_conflict"]
        )
        assert conflict["position"] == position
        assert [t["id"] for t in conflict["tickets"]] == [first.pk, second.pk]
        assert conflict["window_opens"].startswith("2026-11-26T07:00:00")


# --- the beat task's pass, in-process -------------------------------------------------


def scheduled(operations: User, ticket: Ticket, at: str | None = None) -> Ticket:
    body: dict[str, object] = {"at": at} if at else {"next_window": True}
    assert schedule(operations, ticket, body).status_code == 200
    ticket.refresh_from_db()
    return ticket


def test_beat_starts_at_the_window_not_a_minute_before(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    with time_machine.travel(THU_OPEN - dt.timedelta(minutes=1), tick=False):
        assert schedules.schedules_run() == {"started": 0, "given_back": 0, "wait": 0}
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.SCHEDULED
    with time_machine.travel(THU_OPEN, tick=False):
        assert schedules.schedules_run()["started"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPLYING
    assert ticket.runs.filter(kind=RunKind.APPLY, status=RunStatus.QUEUED).count() == 1


def test_a_freeze_over_the_window_stops_it_and_it_returns_to_approved(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    Freeze.objects.create(
        environment=Environment.objects.get(name="prod"),
        starts_at=THU_OPEN - dt.timedelta(hours=1),
        ends_at=THU_OPEN + dt.timedelta(hours=3),
        reason="product launch",
    )
    with time_machine.travel(THU_OPEN + dt.timedelta(minutes=5), tick=False):
        assert schedules.schedules_run()["wait"] == 1  # a freeze may end before 04:00
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.SCHEDULED
    with time_machine.travel(THU_OPEN + dt.timedelta(hours=2), tick=False):  # 04:00 EST
        assert schedules.schedules_run()["given_back"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and ticket.scheduled_for is None
    assert ticket.status_reason == (
        "the scheduled apply was not started: prod was frozen (product launch) until its "
        "change window closed"
    )
    missed = AuditEvent.objects.get(ticket=ticket, action="schedule.missed")
    assert missed.data["told"] == ["opal"]
    assert not ticket.runs.filter(kind=RunKind.APPLY).exists()
    from notifications.models import Notification

    told = Notification.objects.filter(event="schedule.missed", ticket=ticket)
    assert [n.recipient.get_username() for n in told] == ["opal"]


def test_one_that_cannot_start_by_the_close_returns_to_approved(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    with time_machine.travel(THU_OPEN + dt.timedelta(hours=2, minutes=1), tick=False):
        assert schedules.schedules_run()["given_back"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED
    assert "could not start before its change window closed" in ticket.status_reason


def test_two_scheduled_tickets_run_one_after_the_other(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        first = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
        second = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    with time_machine.travel(THU_OPEN, tick=False):
        assert schedules.schedules_run()["started"] == 1
        assert schedules.schedules_run() == {"started": 0, "given_back": 0, "wait": 1}
    assert Ticket.objects.get(pk=first.pk).status == TicketStatus.APPLYING
    assert Ticket.objects.get(pk=second.pk).status == TicketStatus.SCHEDULED
    # The first apply fails (the state is unchanged): the second starts on the next pass.
    TerraformRun.objects.filter(ticket=first, kind=RunKind.APPLY).update(
        status=RunStatus.FAILED, finished_at=THU_OPEN + dt.timedelta(minutes=3)
    )
    with time_machine.travel(THU_OPEN + dt.timedelta(minutes=4), tick=False):
        assert schedules.schedules_run()["started"] == 1
    assert Ticket.objects.get(pk=second.pk).status == TicketStatus.APPLYING


def test_after_a_successful_apply_the_next_scheduled_plan_is_stale_and_given_back(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    with time_machine.travel(OUTSIDE, tick=False):
        first = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
        second = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    TerraformRun.objects.filter(ticket__in=[first, second], kind=RunKind.PLAN).update(
        finished_at=dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    )
    with time_machine.travel(THU_OPEN, tick=False):
        schedules.schedules_run()
    TerraformRun.objects.filter(ticket=first, kind=RunKind.APPLY).update(
        status=RunStatus.SUCCEEDED, finished_at=THU_OPEN + dt.timedelta(minutes=3)
    )
    with time_machine.travel(THU_OPEN + dt.timedelta(minutes=4), tick=False):
        assert schedules.schedules_run()["given_back"] == 1
    second.refresh_from_db()
    assert second.status == TicketStatus.APPROVED
    assert "stale \u2014 re-plan needed" in second.status_reason


def test_environments_show_freezes_and_next_window_with_freezes(author: User) -> None:
    prod = Environment.objects.get(name="prod")
    with time_machine.travel(OUTSIDE, tick=False):
        Freeze.objects.create(
            environment=prod,
            starts_at=THU_OPEN - dt.timedelta(hours=1),
            ends_at=THU_OPEN + dt.timedelta(hours=3),
            reason="product launch",
        )
        body = api_for(author).get("/api/v1/environments/prod/").json()
    assert body["current_freezes"] == []
    assert [f["reason"] for f in body["upcoming_freezes"]] == ["product launch"]
    assert body["next_window_start"] == "2026-12-01T02:00:00-05:00"
    with time_machine.travel(THU_OPEN + dt.timedelta(minutes=30), tick=False):
        body = api_for(author).get("/api/v1/environments/prod/").json()
    assert body["in_window_now"] is False
    assert [f["reason"] for f in body["current_freezes"]] == ["product launch"]


@time_machine.travel(OUTSIDE, tick=False)
def test_freeze_api_for_leads_and_ops(operations: User, developer: User) -> None:
    body = {
        "starts_at": "2026-11-26T00:00:00-05:00",
        "ends_at": "2026-11-27T00:00:00-05:00",
        "reason": "Black Friday",
    }
    created = api_for(operations).post("/api/v1/environments/prod/freezes/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["declared_by"] == "opal" and created.json()["environment"] == "prod"
    assert AuditEvent.objects.filter(action="freeze.declare").count() == 1
    bad = api_for(operations).post(
        "/api/v1/environments/prod/freezes/", {**body, "ends_at": body["starts_at"]}, format="json"
    )
    assert bad.status_code == 400 and "ends_at" in bad.json()
    assert (
        api_for(operations)
        .post("/api/v1/environments/prod/freezes/", {**body, "reason": " "}, format="json")
        .status_code
        == 400
    )
    refused = api_for(developer).post("/api/v1/environments/dev/freezes/", body, format="json")
    assert refused.status_code == 403
    assert Freeze.objects.count() == 1


def test_one_handed_over_at_0359_that_the_worker_claims_at_0400_returns_and_tells(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    """The beat pass hands the apply over just before 04:00; the worker's start-time
    re-check runs at 04:00: Terraform never starts, the ticket is approved again with no
    schedule left on it, and the person who scheduled it is told."""
    from deployments.models import UserPreference
    from deployments.services.runs import claim
    from notifications.models import Notification

    UserPreference.objects.create(user=operations, timezone="Europe/Paris")
    with time_machine.travel(OUTSIDE, tick=False):
        ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    closes = THU_OPEN + dt.timedelta(hours=2)  # 04:00 EST
    with time_machine.travel(closes - dt.timedelta(seconds=1), tick=False):
        assert schedules.schedules_run()["started"] == 1
    run = ticket.runs.get(kind=RunKind.APPLY)
    with time_machine.travel(closes, tick=False):
        assert claim.claim_apply(run.pk, worker="test-worker") is None
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert ticket.status == TicketStatus.APPROVED and ticket.scheduled_for is None
    assert ticket.status_reason.startswith(
        "the apply was not started: prod deploys only inside the change window"
    )
    told = Notification.objects.filter(event="schedule.missed", ticket=ticket)
    assert [n.recipient.get_username() for n in told] == ["opal"]
    # What is stored names the next window in prod's zone; opal reads it in her own.
    assert "Tue 01 Dec 02:00 EST (07:00 UTC)" in ticket.status_reason
    email = told.get().body
    assert "the apply was not started" in email
    assert "Tue 01 Dec 2026 08:00 CET (07:00 UTC)" in email and "EST" not in email, email
    body = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["status"] == "approved" and body["scheduled_for"] is None


def test_approvals_lost_before_the_scheduled_start_tell_the_schedulers(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from notifications.models import Notification

    with time_machine.travel(OUTSIDE, tick=False):
        ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    tech_lead.groups.clear()  # the Tech Lead who approved left the role
    with time_machine.travel(THU_OPEN, tick=False):
        assert schedules.schedules_run() == {"started": 0, "given_back": 1, "wait": 0}
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and ticket.scheduled_for is None
    assert ticket.status_reason.startswith(
        "the scheduled apply was not started: the approvals no longer hold (tess no longer "
        "holds the role they approved under)"
    )
    refused = AuditEvent.objects.get(ticket=ticket, action="schedule.refused")
    assert refused.data["told"] == ["opal"]
    told = Notification.objects.filter(event="schedule.missed", ticket=ticket)
    assert [n.recipient.get_username() for n in told] == ["opal"]
    assert not ticket.runs.filter(kind=RunKind.APPLY).exists()


@time_machine.travel(OUTSIDE, tick=False)
def test_the_ticket_page_shows_stale_as_soon_as_another_apply_lands_and_a_closed_one_never(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from django.test import Client

    ticket = prod_ticket(author, tech_lead, devops_lead)
    other = prod_ticket(author, tech_lead, devops_lead)
    TerraformRun.objects.filter(ticket__in=[ticket, other], kind=RunKind.PLAN).update(
        finished_at=dt.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    )
    client = Client()
    client.force_login(operations)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="plan-stale"' not in page and 'id="schedule-next-button"' in page
    # Another ticket's apply lands: nobody has clicked deploy, the page says so already.
    RunFactory(
        ticket=other,
        plan=other.current_plan,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        finished_at=dt.datetime(2026, 11, 24, 11, 30, tzinfo=UTC),
    )
    Ticket.objects.filter(pk=other.pk).update(status=TicketStatus.COMPLETED)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="plan-stale"' in page and "stale \u2014 re-plan needed" in page
    assert 'id="schedule-next-button"' not in page
    # The applied ticket's own plan is done with: it is not "stale", on the page or the API.
    RunFactory(
        ticket=ticket,
        plan=ticket.current_plan,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        finished_at=dt.datetime(2026, 11, 24, 11, 45, tzinfo=UTC),
    )
    assert 'id="plan-stale"' not in client.get(f"/tickets/{other.pk}/").content.decode()
    assert api_for(operations).get(f"/api/v1/tickets/{other.pk}/").json()["plan_stale"] is False


@time_machine.travel(OUTSIDE, tick=False)
def test_a_freeze_declared_over_a_scheduled_time_is_flagged_on_the_ticket_page(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    from django.test import Client

    ticket = scheduled(operations, prod_ticket(author, tech_lead, devops_lead))
    client = Client()
    client.force_login(operations)
    assert 'id="schedule-frozen"' not in client.get(f"/tickets/{ticket.pk}/").content.decode()
    Freeze.objects.create(
        environment=Environment.objects.get(name="prod"),
        starts_at=THU_OPEN - dt.timedelta(hours=1),
        ends_at=THU_OPEN + dt.timedelta(hours=3),
        reason="product launch",
    )
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="schedule-frozen"' in page
    text = visible_text(page)
    assert (
        "A freeze covers the scheduled time: product launch, until Thu 26 Nov 05:00 EST "
        "(10:00 UTC)" in text
    )
    assert "Move it to the next window (Tue 01 Dec 02:00 EST (07:00 UTC))" in text


def test_the_beat_schedule_runs_the_schedules_and_the_review_reminders() -> None:
    """Schedules are database rows read by a periodic task (no ETA messages): the beat
    entries exist and name registered tasks."""
    from django.conf import settings

    from changecontrol.celery import app

    beat = settings.CELERY_BEAT_SCHEDULE
    assert beat["run-schedules"]["task"] == "deployments.tasks.schedules_run"
    assert beat["run-schedules"]["schedule"] <= 60
    assert beat["follow-ups-remind"]["task"] == "deployments.tasks.follow_ups_remind"
    app.loader.import_default_modules()
    assert {"deployments.tasks.schedules_run", "deployments.tasks.follow_ups_remind"} <= set(
        app.tasks
    )
