"""Tickets in a given state, made the way the portal makes them (plans, approvals)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

IN_WINDOW = "2026-11-24 07:30:00+00:00"  # Tuesday 02:30 in New York


OUTSIDE_WINDOW = "2026-11-24 12:00:00+00:00"  # Tuesday 07:00 in New York


def awaiting(env: str, author: User, **extra: Any) -> Ticket:
    """A ticket whose plan succeeded and which waits for approval."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
        **extra,
    )
    plan = RunFactory(
        ticket=ticket,
        plan_sha256=hashlib.sha256(b"plan-%d" % ticket.pk).hexdigest(),
        summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
    )
    ticket.current_plan = plan
    ticket.save()
    return ticket


NO_PLAN = "0" * 64


def approve(user: User, ticket: Ticket, comment: str = "") -> Any:
    """Approve the plan the ticket shows now, as an approver who reviewed it would."""
    plan = Ticket.objects.get(pk=ticket.pk).current_plan
    reviewed = plan.plan_sha256 if plan and plan.plan_sha256 else NO_PLAN
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"comment": comment, "plan_sha256": reviewed},
        format="json",
    )


def approved(env: str, author: User, *approvers: User) -> Ticket:
    ticket = awaiting(env, author)
    for user in approvers:
        assert approve(user, ticket).status_code == 200
    ticket.refresh_from_db()
    return ticket
