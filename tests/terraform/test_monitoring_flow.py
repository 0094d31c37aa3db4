"""Issue 9's "done when", monitoring part, on the real Terraform binary: an emergency prod
deploy shows the monitoring countdown and the checklist; ops signs it; complete is refused
until the hour passes, then completes the ticket."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from changecontrol.celery import app
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, ChecklistItem, MonitoringPeriod, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK, ROLLBACK_OK
from tests.helpers.flow import drain

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

FRIDAY_1500_UTC = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)  # outside the window


@pytest.fixture
def eager() -> Any:
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_emergency_prod_deploy_is_monitored_for_an_hour_then_ops_completes_it(
    author: User,
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
                "risk_assessment": RISK_OK,
                "rollback_plan": ROLLBACK_OK,
            },
            format="json",
        )
        assert filed.status_code == 201, filed.json()
        ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
        sha = ticket.current_plan.plan_sha256
        approved = api_for(devops_lead).post(
            f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": sha}, format="json"
        )
        assert approved.json()["status"] == "approved", approved.json()
        assert api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/").status_code == 202
        ticket = drain(ticket)
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    assert ticket.status == TicketStatus.MONITORING
    period = MonitoringPeriod.objects.get(ticket=ticket)
    assert period.ends_at == apply.finished_at + dt.timedelta(minutes=60)
    assert ChecklistItem.objects.filter(ticket=ticket).count() == 7

    ops = Client()
    ops.force_login(operations)
    with time_machine.travel(apply.finished_at + dt.timedelta(minutes=20), tick=False):
        page = ops.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="monitoring-countdown" data-remaining="2400">40:00<' in page
        assert page.count('<form method="post" action="/tickets/') >= 7
        for item in ChecklistItem.objects.filter(ticket=ticket):
            signed = ops.post(
                f"/tickets/{ticket.pk}/checklist/{item.key}/sign/", {"note": f"{item.label}: ok"}
            )
            assert signed.status_code == 302
        assert not ChecklistItem.objects.filter(ticket=ticket, signed_at__isnull=True).exists()
        assert AuditEvent.objects.filter(ticket=ticket, action="checklist.signoff").count() == 7

    with time_machine.travel(apply.finished_at + dt.timedelta(minutes=59), tick=False):
        refused = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/complete/")
        assert refused.status_code == 409
        assert "the monitoring period runs until" in refused.json()["detail"]
        page = ops.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="complete-button" disabled' in page
        assert ops.post(f"/tickets/{ticket.pk}/complete/").status_code == 302
        assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.MONITORING

    with time_machine.travel(apply.finished_at + dt.timedelta(minutes=61), tick=False):
        page = ops.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="complete-form"' in page
        ops.post(f"/tickets/{ticket.pk}/complete/")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED
    assert ticket.completed_at == apply.finished_at + dt.timedelta(minutes=61)
