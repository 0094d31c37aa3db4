"""End to end with a real Celery worker process: the broker from settings (Redis in CI),
the real Terraform binary, the sample stack, and the ticket ending `completed`."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from deployments.choices import RunStatus, TicketStatus
from deployments.models import TerraformRun, Ticket
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.terraform, pytest.mark.django_db(transaction=True)]


def test_dev_ticket_filed_through_the_api_completes_on_a_real_worker(
    celery_worker_process: subprocess.Popen[bytes], author: User, capsys: Any
) -> None:
    call_command("create_api_token", author.username)
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.post(
        "/api/v1/tickets/", {"title": "Worker e2e", "environment": "dev"}, format="json"
    )
    assert response.status_code == 201, response.json()
    ticket_id = response.json()["id"]

    def finished() -> str | None:
        assert celery_worker_process.poll() is None, "the worker process died"
        status = Ticket.objects.get(pk=ticket_id).status
        return status if status in {"completed", "plan_failed", "apply_failed"} else None

    assert wait_for(finished, timeout=180, what="the ticket to finish") == TicketStatus.COMPLETED

    detail = client.get(f"/api/v1/tickets/{ticket_id}/").json()
    assert [r["kind"] for r in detail["runs"]] == ["check", "apply", "plan"]
    assert all(r["status"] == "succeeded" for r in detail["runs"])
    assert detail["plan_summary"]["add"] == 24
    apply_run = client.get(detail["runs"][1]["url"]).json()
    assert apply_run["exit_code"] == 0
    assert "Apply complete! Resources: 24 added" in apply_run["log"]
    assert apply_run["plan_sha256"] == "" and detail["current_plan"]["plan_sha256"]
    runs = TerraformRun.objects.filter(ticket_id=ticket_id)
    # Every run was executed by the worker process, not in this test process.
    assert all(r.worker.startswith("test-worker-") for r in runs)
    assert not runs.exclude(status=RunStatus.SUCCEEDED).exists()
