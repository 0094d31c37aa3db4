"""Scheduled deploys on a REAL Celery worker with the real Terraform binary, time-travelled.

How the worker sees the travelled time: the beat task's pass (services.schedules.
schedules_run) is called in this process under time-machine; the apply it queues is run by
the worker process, whose start-time re-check (policy.check_apply_may_start) reads
deployments.lib.clock.now(). The test sets PORTAL_TEST_CLOCK_FILE in the worker's environment
and writes the travelled instant into that file, so the worker re-checks the window at the
same instant the beat pass ran. Production never sets it (the clock is timezone.now()).
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Ticket
from deployments.services import schedules
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.waiting import wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.terraform,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


@pytest.fixture
def clock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "clock"
    path.write_text("")
    monkeypatch.setenv("PORTAL_TEST_CLOCK_FILE", str(path))
    return path


@pytest.fixture
def worker(clock_file: Path, celery_worker_process: subprocess.Popen[bytes]) -> Any:
    """The real worker, started after the clock file is in its environment."""
    return celery_worker_process


def file_and_approve(author: User, tech_lead: User, devops_lead: User, title: str) -> Ticket:
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": title,
            "environment": "prod",
            "description": "scheduled change",
            "risk_assessment": {"impact": "low", "likelihood": "low", "summary": "low"},
            "rollback_plan": {"steps": "re-apply previous"},
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    pk = filed.json()["id"]
    wait_for(
        lambda: Ticket.objects.get(pk=pk).status != TicketStatus.PLANNING or None,
        timeout=240,
        what="the plan on the worker",
    )
    for user in (tech_lead, devops_lead):
        sha = Ticket.objects.get(pk=pk).current_plan.plan_sha256
        response = api_for(user).post(
            f"/api/v1/tickets/{pk}/approve/", {"plan_sha256": sha}, format="json"
        )
        assert response.status_code == 200, response.json()
    ticket = Ticket.objects.get(pk=pk)
    assert ticket.status == TicketStatus.APPROVED
    return ticket


def beat_at(moment: dt.datetime, clock_file: Path) -> dict[str, int]:
    """One beat pass at ``moment``; the worker's clock reads the same instant."""
    clock_file.write_text(moment.isoformat())
    with time_machine.travel(moment, tick=False):
        return schedules.schedules_run()


def settled(pk: int) -> str | None:
    status = Ticket.objects.get(pk=pk).status
    return None if status in (TicketStatus.SCHEDULED, TicketStatus.APPLYING) else status


@pytest.mark.parametrize(
    ("scheduled_at", "opens"),
    [
        # Tue 07:00 EST → Thu 26 Nov 02:00 EST = 07:00 UTC (winter)
        (dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC), dt.datetime(2027, 1, 7, 7, tzinfo=dt.UTC)),
        # Tue 07:00 EDT → Thu 2 Jul 02:00 EDT = 06:00 UTC (summer)
        (dt.datetime(2026, 6, 30, 11, tzinfo=dt.UTC), dt.datetime(2026, 7, 2, 6, tzinfo=dt.UTC)),
    ],
    ids=["january", "july"],
)
def test_scheduled_ticket_starts_at_0200_new_york_not_at_0159(
    worker: Any,
    clock_file: Path,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
    scheduled_at: dt.datetime,
    opens: dt.datetime,
) -> None:
    ticket = file_and_approve(author, tech_lead, devops_lead, "Scheduled change")
    with time_machine.travel(scheduled_at, tick=False):
        response = api_for(operations).post(
            f"/api/v1/tickets/{ticket.pk}/schedule/", {"next_window": True}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert dt.datetime.fromisoformat(response.json()["scheduled_for"]) == opens
    assert beat_at(opens - dt.timedelta(minutes=1), clock_file)["started"] == 0
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.SCHEDULED
    assert not Ticket.objects.get(pk=ticket.pk).runs.filter(kind=RunKind.APPLY).exists()
    assert beat_at(opens, clock_file)["started"] == 1
    final = wait_for(lambda: settled(ticket.pk), timeout=300, what="the scheduled apply")
    assert final == TicketStatus.MONITORING, Ticket.objects.get(pk=ticket.pk).status_reason
    apply = Ticket.objects.get(pk=ticket.pk).runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED and apply.worker.startswith("test-worker-")
    assert "Apply complete! Resources: 39 added" in apply.log


def test_two_scheduled_tickets_run_one_after_the_other(
    worker: Any,
    clock_file: Path,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
) -> None:
    """The second starts only after the first finished; the first changed the state, so
    the second's plan is stale and it goes back to approved ('re-plan needed') instead of
    being handed to Terraform, which would refuse it."""
    first = file_and_approve(author, tech_lead, devops_lead, "First")
    second = file_and_approve(author, tech_lead, devops_lead, "Second")
    tuesday = dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC)
    opens = dt.datetime(2027, 1, 7, 7, tzinfo=dt.UTC)
    with time_machine.travel(tuesday, tick=False):
        for ticket in (first, second):
            response = api_for(operations).post(
                f"/api/v1/tickets/{ticket.pk}/schedule/", {"next_window": True}, format="json"
            )
            assert response.status_code == 200
        conflict = (
            api_for(operations).get(f"/api/v1/tickets/{second.pk}/").json()["schedule_conflict"]
        )
    assert conflict["position"] == 2
    assert beat_at(opens, clock_file) == {"started": 1, "given_back": 0, "wait": 0}
    assert Ticket.objects.get(pk=second.pk).status == TicketStatus.SCHEDULED
    # While the first applies, later passes leave the second waiting.
    assert beat_at(opens + dt.timedelta(seconds=30), clock_file)["started"] == 0
    assert Ticket.objects.get(pk=second.pk).status == TicketStatus.SCHEDULED
    assert wait_for(lambda: settled(first.pk), timeout=300) == TicketStatus.MONITORING
    result = beat_at(opens + dt.timedelta(minutes=5), clock_file)
    assert result == {"started": 0, "given_back": 1, "wait": 0}
    second.refresh_from_db()
    assert second.status == TicketStatus.APPROVED
    assert "stale \u2014 re-plan needed" in second.status_reason
    assert not second.runs.filter(kind=RunKind.APPLY).exists()


def test_a_freeze_declared_after_the_hand_over_is_caught_by_the_worker(
    worker: Any,
    clock_file: Path,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
) -> None:
    """The beat pass hands the apply over at 02:00; a freeze committed with it (before the
    worker claims the run) is seen by the worker's start-time re-check: Terraform never
    runs and the ticket goes back to approved naming the freeze."""
    from django.db import transaction

    from deployments.models import Environment, Freeze

    ticket = file_and_approve(author, tech_lead, devops_lead, "Frozen at the last second")
    opens = dt.datetime(2027, 1, 7, 7, tzinfo=dt.UTC)
    with time_machine.travel(dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC), tick=False):
        response = api_for(operations).post(
            f"/api/v1/tickets/{ticket.pk}/schedule/", {"next_window": True}, format="json"
        )
    assert response.status_code == 200
    clock_file.write_text(opens.isoformat())
    with time_machine.travel(opens, tick=False), transaction.atomic():
        assert schedules.schedules_run()["started"] == 1
        Freeze.objects.create(
            environment=Environment.objects.get(name="prod"),
            starts_at=opens - dt.timedelta(minutes=5),
            ends_at=opens + dt.timedelta(hours=3),
            reason="incident in progress",
        )
    final = wait_for(lambda: settled(ticket.pk), timeout=300, what="the worker's re-check")
    assert final == TicketStatus.APPROVED
    ticket.refresh_from_db()
    assert "prod is frozen until" in ticket.status_reason
    assert "incident in progress" in ticket.status_reason
    assert ticket.scheduled_for is None
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.CANCELLED and "Apply complete" not in apply.log
    told = Notification.objects.filter(event="schedule.missed", ticket=ticket)
    assert [n.recipient.get_username() for n in told] == [operations.get_username()]


def test_one_that_cannot_start_by_0400_returns_to_approved_and_the_scheduler_is_told(
    worker: Any,
    clock_file: Path,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
) -> None:
    """Handed over by the beat pass a second before 04:00 New York time; the worker claims
    it at 04:00: Terraform never runs, the ticket is approved again (no schedule left) and
    the person who scheduled it is told why."""
    ticket = file_and_approve(author, tech_lead, devops_lead, "Too late")
    with time_machine.travel(dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC), tick=False):
        response = api_for(operations).post(
            f"/api/v1/tickets/{ticket.pk}/schedule/", {"next_window": True}, format="json"
        )
    assert response.status_code == 200
    closes = dt.datetime(2027, 1, 7, 9, tzinfo=dt.UTC)  # Thu 04:00 EST
    clock_file.write_text(closes.isoformat())  # the worker claims it at 04:00
    with time_machine.travel(closes - dt.timedelta(seconds=1), tick=False):
        assert schedules.schedules_run()["started"] == 1
    final = wait_for(lambda: settled(ticket.pk), timeout=300, what="the worker's re-check")
    assert final == TicketStatus.APPROVED
    ticket.refresh_from_db()
    assert ticket.scheduled_for is None
    assert ticket.status_reason.startswith(
        "the apply was not started: prod deploys only inside the change window"
    )
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.CANCELLED and "Apply complete" not in apply.log
    told = Notification.objects.filter(event="schedule.missed", ticket=ticket)
    assert [n.recipient.get_username() for n in told] == [operations.get_username()]
    assert "the apply was not started" in told.get().body
