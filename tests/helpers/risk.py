"""Plans whose risk is known."""

from __future__ import annotations

import hashlib

from django.db import transaction

from deployments.models import Ticket
from deployments.services.risk import ticket_risk_refresh
from tests.helpers.factories import RunFactory


def resource(address: str, action: str, rtype: str = "", module: str = "") -> dict[str, str]:
    """One resource change of a plan summary."""
    return {"address": address, "type": rtype, "module": module, "action": action}


def destructive_plan(ticket: Ticket) -> Ticket:
    """Give the ticket a current plan that replaces the database, scored as the worker does."""
    plan = RunFactory(
        ticket=ticket,
        plan_sha256=hashlib.sha256(b"plan-%d" % ticket.pk).hexdigest(),
        summary={
            "add": 1,
            "change": 0,
            "destroy": 1,
            "resources": [
                resource(
                    "module.database.aws_db_instance.main",
                    "replace",
                    "aws_db_instance",
                    "module.database",
                )
            ],
        },
    )
    ticket.current_plan = plan
    ticket.save()
    with transaction.atomic():  # as the worker does (PostgreSQL locks the audit head)
        ticket_risk_refresh(ticket, actor="worker", run=plan)
    return ticket
