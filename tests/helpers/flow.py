"""Running a ticket's queued runs in the test process, as a worker would."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from deployments import services
from deployments.choices import RunStatus
from deployments.models import TerraformRun, Ticket
from tests.helpers.api import api_for


def drain(ticket: Ticket) -> Ticket:
    """Execute the ticket's queued runs one after another, as a worker would."""
    while run := TerraformRun.objects.filter(ticket=ticket, status=RunStatus.QUEUED).first():
        services.run_execute(run_id=run.pk, worker="test")
    ticket.refresh_from_db()
    return ticket


def file_dev(user: User, **extra: Any) -> Ticket:
    response = api_for(user).post(
        "/api/v1/tickets/", {"title": "Dev change", "environment": "dev", **extra}, format="json"
    )
    assert response.status_code == 201, response.json()
    return Ticket.objects.get(pk=response.json()["id"])
