"""An immediate rollback lasts as long as its hour (issue 16, hole 1): past it, approve,
deploy, schedule and the worker's start-time check all follow the planned path (the normal
approval rule, the change window and freezes), and the ticket page and API say so."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Deployment, Environment, Freeze, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory
from tests.helpers.waiting import wait_for

T0 = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)  # a Friday: prod's window is shut
THREE_DAYS_LATER = T0 + dt.timedelta(days=3)  # Monday 15:00 UTC: shut too
THURSDAY_IN_WINDOW = dt.datetime(2026, 12, 3, 7, 30, tzinfo=dt.UTC)  # Thu 02:30 New York
PLAN_SHA = "b" * 64


def _prod() -> Environment:
    return Environment.objects.get(name="prod")


def _history(author: User) -> Deployment:
    """prod: a good deployment at T0-3h and the one to roll back at T0-10min (returned)."""
    for at, status in (
        (T0 - dt.timedelta(hours=3), TicketStatus.COMPLETED),
        (T0 - dt.timedelta(minutes=10), TicketStatus.MONITORING),
    ):
        ticket = TicketFactory(environment=_prod(), author=author, status=status, deployed_at=at)
        deployment = DeploymentFactory(ticket=ticket, finished_at=at)
    return deployment


def _open_immediate(operations: User, bad: Deployment) -> Ticket:
    """ops opens the rollback at T0 (immediate until T0+50min); its plan is made up."""
    with time_machine.travel(T0, tick=False):
        opened = api_for(operations).post(f"/api/v1/tickets/{bad.ticket_id}/rollback/")
    assert opened.status_code == 201, opened.json()
    assert opened.json()["rollback_mode"] == "immediate"
    rollback = Ticket.objects.get(pk=opened.json()["id"])
    assert rollback.rollback_immediate_until == bad.finished_at + dt.timedelta(minutes=60)
    TerraformRun.objects.filter(ticket=rollback).update(status=RunStatus.CANCELLED)
    plan = RunFactory(ticket=rollback, plan_sha256=PLAN_SHA, finished_at=T0)
    Ticket.objects.filter(pk=rollback.pk).update(
        status=TicketStatus.AWAITING_APPROVAL, current_plan=plan
    )
    return rollback


def _approve(user: User, ticket: Ticket) -> Any:
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": PLAN_SHA}, format="json"
    )


@pytest.mark.django_db
def test_three_days_later_an_immediate_rollback_needs_two_leads_the_window_and_no_freeze(
    author: User, operations: User, tech_lead: User, devops_lead: User
) -> None:
    rollback = _open_immediate(operations, _history(author))
    with time_machine.travel(THREE_DAYS_LATER, tick=False):
        Freeze.objects.create(
            environment=_prod(),
            starts_at=THREE_DAYS_LATER - dt.timedelta(hours=1),
            ends_at=THREE_DAYS_LATER + dt.timedelta(days=1),
            reason="quarter-end freeze",
        )
        # One lead is no longer enough: the ticket still waits, for the normal rule.
        first = _approve(tech_lead, rollback)
        assert first.status_code == 200, first.json()
        body = first.json()
        assert body["status"] == "awaiting_approval"
        assert body["rollback_mode"] == "planned" and body["rollback_opened_as"] == "immediate"
        assert "Tech Lead and DevOps Lead" in body["approval_status"]["rule"]
        assert "hour ended" in body["approval_status"]["rollback_note"]
        assert "planned path" in body["approval_status"]["rollback_note"]
        second = _approve(devops_lead, rollback)
        assert second.status_code == 200 and second.json()["status"] == "approved"
        # Outside the window and in a freeze: refused, saying why, and nothing starts.
        refused = api_for(operations).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
        assert refused.status_code == 409, refused.json()
        assert "hour ended" in refused.json()["detail"]
        assert "prod is frozen until" in refused.json()["detail"]
        assert not rollback.runs.filter(kind=RunKind.APPLY).exists()
        # The page says it plainly, and offers no deploy.
        client = Client()
        client.force_login(operations)
        html = client.get(f"/tickets/{rollback.pk}/").content.decode()
        assert 'id="rollback-lapsed"' in html and "planned path" in html
        assert 'id="rollback-immediate"' not in html and 'id="deploy-button"' not in html
    # Within the hour the page said the opposite.
    with time_machine.travel(T0, tick=False):
        html = client.get(f"/tickets/{rollback.pk}/").content.decode()
    assert 'id="rollback-immediate"' in html and 'id="rollback-lapsed"' not in html


@pytest.mark.django_db
def test_one_leads_approval_in_the_hour_is_completed_by_the_normal_rule_after_it(
    author: User, operations: User, tech_lead: User, devops_lead: User
) -> None:
    rollback = _open_immediate(operations, _history(author))
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        approved = _approve(tech_lead, rollback)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    with time_machine.travel(THURSDAY_IN_WINDOW, tick=False):
        # In the window, yet one lead's approval no longer carries it.
        refused = api_for(operations).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
        assert refused.status_code == 409
        assert "hour ended" in refused.json()["detail"]
        assert "still needs a DevOps Lead" in refused.json()["detail"]
        detail = api_for(devops_lead).get(f"/api/v1/tickets/{rollback.pk}/").json()
        assert "approve" in detail["available_actions"]
        assert (
            "deploy"
            not in api_for(operations)
            .get(f"/api/v1/tickets/{rollback.pk}/")
            .json()["available_actions"]
        )
        # The DevOps Lead gives the approval it lacks; then it deploys like a normal ticket.
        completed = _approve(devops_lead, rollback)
        assert completed.status_code == 200, completed.json()
        assert completed.json()["status"] == "approved"
        deployed = api_for(operations).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
        assert deployed.status_code == 202, deployed.json()
    rollback.refresh_from_db()
    assert rollback.status == TicketStatus.APPLYING
    transition = rollback.audit_events.filter(action="ticket.transition").last()
    assert transition is not None and "window" not in transition.data  # no bypass recorded


@pytest.mark.django_db
def test_a_rollback_scheduled_past_its_hour_must_be_inside_the_window(
    author: User, operations: User, tech_lead: User
) -> None:
    rollback = _open_immediate(operations, _history(author))
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        assert _approve(tech_lead, rollback).status_code == 200
        ops = api_for(operations)
        late = (T0 + dt.timedelta(hours=2)).isoformat()
        refused = ops.post(f"/api/v1/tickets/{rollback.pk}/schedule/", {"at": late}, format="json")
        assert refused.status_code == 409, refused.json()
        assert "outside prod's change window" in refused.json()["detail"]
        soon = (T0 + dt.timedelta(minutes=30)).isoformat()
        ok = ops.post(f"/api/v1/tickets/{rollback.pk}/schedule/", {"at": soon}, format="json")
        assert ok.status_code == 200, ok.json()


# --- the worker's start-time check, on a real worker ---------------------------------------


@pytest.fixture
def clock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "clock"
    path.write_text("")
    monkeypatch.setenv("PORTAL_TEST_CLOCK_FILE", str(path))
    return path


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_an_immediate_rollback_whose_hour_ended_before_it_started(
    clock_file: Path,
    celery_worker_process: subprocess.Popen[bytes],
    author: User,
    operations: User,
    tech_lead: User,
) -> None:
    """Deploy is asked within the hour; the worker picks the apply up three days later (a
    queue that was stuck): its re-check finds the hour over and Terraform never runs."""
    rollback = _open_immediate(operations, _history(author))
    clock_file.write_text(THREE_DAYS_LATER.isoformat())
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        assert _approve(tech_lead, rollback).status_code == 200
        deployed = api_for(operations).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
    assert deployed.status_code == 202, deployed.json()

    def settled() -> str | None:
        status = Ticket.objects.get(pk=rollback.pk).status
        return None if status == TicketStatus.APPLYING else status

    final = wait_for(settled, timeout=240, what="the worker's start-time check")
    rollback.refresh_from_db()
    assert final == TicketStatus.APPROVED, rollback.status_reason
    assert rollback.status_reason.startswith("the apply was not started: ")
    assert "hour ended" in rollback.status_reason
    apply = rollback.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.CANCELLED and "Apply complete" not in apply.log
