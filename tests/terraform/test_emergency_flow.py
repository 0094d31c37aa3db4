"""The emergency path on the real Terraform binary: filing tells both leads at once, one
DevOps Lead's approval suffices, the deploy runs outside the window, the page shows the
banner, and the post-deployment review is due exactly 24 hours after the deployment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from changecontrol.celery import app
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, FollowUp, Ticket
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.flow import drain

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

FRIDAY_1500_UTC = "2026-11-27 15:00:00+00:00"  # 10:00 in New York: no window


@pytest.fixture
def eager() -> Any:
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_emergency_prod_change_deploys_outside_the_window_and_owes_a_review(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
    inline: list[int],
    eager: None,
) -> None:
    with time_machine.travel(FRIDAY_1500_UTC, tick=True):
        filed = api_for(author).post(
            "/api/v1/tickets/",
            {
                "title": "Hotfix: login outage",
                "environment": "prod",
                "change_type": "emergency",
                "description": "login is down for every customer",
                "risk_assessment": {"impact": "low", "likelihood": "low", "summary": "small"},
                "rollback_plan": {"steps": "re-apply previous"},
            },
            format="json",
        )
        assert filed.status_code == 201, filed.json()
        # Both leads are told at once, before any plan has run.
        emails = sorted(m.to[0] for m in mail.outbox)
        assert emails == ["otto@example.com", "tess@example.com"]
        assert all(m.subject.startswith("[EMERGENCY] prod:") for m in mail.outbox)
        assert "login is down for every customer" in mail.outbox[0].body
        assert Notification.objects.filter(event="emergency.filed", status="sent").count() == 2

        ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
        assert ticket.status == TicketStatus.AWAITING_APPROVAL, ticket.status_reason
        sha = ticket.current_plan.plan_sha256
        approved = api_for(devops_lead).post(
            f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": sha}, format="json"
        )
        assert approved.json()["status"] == "approved", approved.json()

        deployed = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
        assert deployed.status_code == 202, deployed.json()
        ticket = drain(ticket)

        # Still on that Friday: the review due 24 h after the deployment is not overdue yet
        # (outside the travel it would be, on any later date).
        _deployed_and_owes_a_review(ticket, devops_lead)


def _deployed_and_owes_a_review(ticket: Ticket, devops_lead: User) -> None:
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    assert ticket.status == TicketStatus.MONITORING
    review = FollowUp.objects.get(ticket=ticket)
    assert review.kind == "post_deployment_review" and review.deployment_run == apply
    assert review.due_at == apply.finished_at + dt.timedelta(hours=24)
    assert ticket.deployed_at == apply.finished_at
    assert AuditEvent.objects.filter(action="followup.open", ticket=ticket).exists()
    assert Notification.objects.filter(event="followup.due").count() == 2

    client = Client()
    client.force_login(devops_lead)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="emergency-banner"' in page
    assert "Emergency change: bypasses the change window and freezes" in page
    assert f'id="follow-up-{review.pk}-form"' in page

    detail = api_for(devops_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["follow_ups"][0]["id"] == review.pk
    assert detail["follow_ups"][0]["overdue"] is False


def test_a_normal_prod_ticket_neither_alerts_nor_owes_a_review(
    author: User,
    tech_lead: User,
    infra_repo: Path,
    inline: list[int],
    eager: None,
) -> None:
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": "Routine",
            "environment": "prod",
            "description": "d",
            "risk_assessment": {"impact": "low", "likelihood": "low", "summary": "n"},
            "rollback_plan": {"steps": "n"},
        },
        format="json",
    )
    assert filed.status_code == 201
    assert mail.outbox == []
    page = Client()
    page.force_login(tech_lead)
    assert (
        'id="emergency-banner"' not in page.get(f"/tickets/{filed.json()['id']}/").content.decode()
    )


def test_an_emergency_must_say_why(
    author: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    refused = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "Hotfix", "environment": "dev", "change_type": "emergency"},
        format="json",
    )
    assert refused.status_code == 400
    assert "why it cannot wait" in refused.json()["description"][0]
    assert not Ticket.objects.exists() and not AuditEvent.objects.exists()
    assert inline == [] and mail.outbox == []
