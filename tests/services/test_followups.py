"""Follow-ups: completing a review (API and page), overdue flags, daily reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.db import transaction
from django.test import Client

from changecontrol.celery import app
from deployments import services
from deployments.choices import ChangeType, RunKind, TicketStatus
from deployments.models import AuditEvent, Environment, FollowUp, Ticket
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

DEPLOYED = dt.datetime(2026, 11, 26, 3, 15, tzinfo=dt.UTC)  # Thursday, outside the window
REVIEW = {
    "what_happened": "hotfix for the login outage",
    "impact": "none after deploy",
    "root_cause": "expired certificate",
    "actions": "automate renewal (otto)",
}


@pytest.fixture(autouse=True)
def eager() -> Any:
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def emergency_with_review(env: str = "prod") -> tuple[Ticket, FollowUp]:
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env),
        change_type=ChangeType.EMERGENCY,
        status=TicketStatus.MONITORING,
        description="login is down for everyone",
        deployed_at=DEPLOYED,
    )
    plan = RunFactory(ticket=ticket, kind=RunKind.PLAN)
    run = RunFactory(ticket=ticket, kind=RunKind.APPLY, plan=plan, finished_at=DEPLOYED)
    with transaction.atomic():
        follow_up = services.follow_up_open(
            ticket=ticket,
            kind="post_deployment_review",
            due_at=DEPLOYED + dt.timedelta(hours=24),
            actor="worker",
            deployment_run=run,
        )
        again = services.follow_up_open(
            ticket=ticket,
            kind="post_deployment_review",
            due_at=DEPLOYED + dt.timedelta(hours=48),
            actor="worker",
            deployment_run=run,
        )
    assert again.pk == follow_up.pk  # idempotent per ticket+kind+deployment
    return ticket, follow_up


def complete(user: User, ticket: Ticket, follow_up: FollowUp, body: dict[str, Any]) -> Any:
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/follow-ups/{follow_up.pk}/complete/", body, format="json"
    )


def test_devops_lead_completes_the_review_once(
    devops_lead: User, tech_lead: User, settings: Any
) -> None:
    ticket, follow_up = emergency_with_review()
    with time_machine.travel(DEPLOYED + dt.timedelta(hours=2)):
        detail = api_for(devops_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
        (shown,) = detail["follow_ups"]
        assert shown["kind"] == "post_deployment_review" and shown["overdue"] is False
        assert shown["due_at"].startswith("2026-11-27T03:15:00")
        assert shown["done_at"] is None and shown["completed_by"] is None

        done = complete(devops_lead, ticket, follow_up, REVIEW)
        assert done.status_code == 200, done.json()
        body = done.json()
        assert body["completed_by"] == "otto" and body["root_cause"] == "expired certificate"
        assert body["done_at"].startswith("2026-11-26T05:15")

        again = complete(tech_lead, ticket, follow_up, REVIEW)
        assert again.status_code == 409
        assert "already completed" in again.json()["detail"]
    event = AuditEvent.objects.get(action="followup.complete")
    assert event.actor == devops_lead and event.data["late"] is False
    assert AuditEvent.objects.filter(action="followup.open").count() == 1


def test_empty_review_fields_are_named_and_nothing_is_written(devops_lead: User) -> None:
    ticket, follow_up = emergency_with_review()
    missing = complete(devops_lead, ticket, follow_up, {"what_happened": "x"})
    assert missing.status_code == 400
    assert set(missing.json()) >= {"impact", "root_cause", "actions"}
    blank = complete(devops_lead, ticket, follow_up, {**REVIEW, "impact": "  ", "actions": " "})
    assert blank.status_code == 400
    assert "impact" in blank.json()["detail"] and "actions" in blank.json()["detail"]
    follow_up.refresh_from_db()
    assert follow_up.done_at is None and follow_up.what_happened == ""
    assert not AuditEvent.objects.filter(action="followup.complete").exists()


def test_only_leads_complete_reviews_and_scope_hides_prod(
    developer: User, operations: User, lead: User, outsider: User
) -> None:
    ticket, follow_up = emergency_with_review()
    refused = complete(operations, ticket, follow_up, REVIEW)
    assert refused.status_code == 403
    assert "Tech Lead or a DevOps Lead" in refused.json()["detail"]
    for user in (developer, lead, outsider):  # prod is outside their scope (SPEC §2)
        assert complete(user, ticket, follow_up, REVIEW).status_code == 404, user.username
    dev_ticket, dev_follow_up = emergency_with_review("dev")
    assert complete(developer, dev_ticket, dev_follow_up, REVIEW).status_code == 403
    # A follow-up id of another ticket is not found through this one.
    assert complete(operations, dev_ticket, follow_up, REVIEW).status_code == 404
    follow_up.refresh_from_db()
    assert follow_up.done_at is None


def test_overdue_is_flagged_and_reminded_daily(
    tech_lead: User, devops_lead: User, operations: User, django_capture_on_commit_callbacks: Any
) -> None:
    ticket, follow_up = emergency_with_review()
    due = follow_up.due_at
    mail.outbox.clear()
    with time_machine.travel(due - dt.timedelta(minutes=1)):
        assert services.follow_ups_remind() == 0
        assert (
            api_for(devops_lead)
            .get(f"/api/v1/tickets/{ticket.pk}/")
            .json()["follow_ups"][0]["overdue"]
            is False
        )
    with (
        time_machine.travel(due + dt.timedelta(hours=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.follow_ups_remind() == 1
        shown = api_for(devops_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
        assert shown["follow_ups"][0]["overdue"] is True
    assert sorted(m.to[0] for m in mail.outbox) == ["otto@example.com", "tess@example.com"]
    assert mail.outbox[0].subject.startswith("OVERDUE: Post-deployment review")
    with time_machine.travel(due + dt.timedelta(hours=20)):
        assert services.follow_ups_remind() == 0  # once a day
    with time_machine.travel(due + dt.timedelta(hours=25)):
        assert services.follow_ups_remind() == 1
        assert complete(tech_lead, ticket, follow_up, REVIEW).status_code == 200
    with time_machine.travel(due + dt.timedelta(days=3)):
        assert services.follow_ups_remind() == 0  # done: no more reminders
    assert Notification.objects.filter(event="followup.overdue").count() == 4


def test_overdue_badge_in_the_list_and_on_the_ticket(devops_lead: User) -> None:
    ticket, follow_up = emergency_with_review()
    client = Client()
    client.force_login(devops_lead)
    with time_machine.travel(follow_up.due_at + dt.timedelta(minutes=5)):
        listing = client.get("/tickets/").content.decode()
        assert "follow-up overdue" in listing
        page = client.get(f"/tickets/{ticket.pk}/").content.decode()
        assert f'id="follow-up-{follow_up.pk}-overdue"' in page
        assert "Emergency change: bypasses the change window and freezes" in page
        assert "login is down for everyone" in page
    with time_machine.travel(follow_up.due_at - dt.timedelta(minutes=5)):
        assert "follow-up overdue" not in client.get("/tickets/").content.decode()


def test_the_page_form_completes_the_review_and_keeps_a_refused_draft(
    devops_lead: User, operations: User
) -> None:
    ticket, follow_up = emergency_with_review()
    url = f"/tickets/{ticket.pk}/follow-ups/{follow_up.pk}/complete/"
    ops = Client()
    ops.force_login(operations)
    assert (
        f'id="follow-up-{follow_up.pk}-form"'
        not in ops.get(f"/tickets/{ticket.pk}/").content.decode()
    )
    refused = ops.post(url, REVIEW, follow=True).content.decode()
    assert "completed by a Tech Lead or a DevOps Lead" in refused

    client = Client()
    client.force_login(devops_lead)
    page = client.post(url, {**REVIEW, "root_cause": ""}, follow=True).content.decode()
    assert "fill in root_cause" in page
    assert "hotfix for the login outage</textarea>" in page  # nothing typed is lost
    page = client.post(url, REVIEW, follow=True).content.decode()
    assert "Post-deployment review completed." in page
    assert "expired certificate" in page
    follow_up.refresh_from_db()
    assert follow_up.completed_by == devops_lead
