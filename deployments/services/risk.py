"""Storing a ticket's scored risk (deployments.policy.risk) and auditing each change of it."""

from __future__ import annotations

from typing import Any

from deployments.models import TerraformRun, Ticket
from deployments.policy import data_resources, risk
from deployments.services.audit import audit_record


def ticket_risk_refresh(ticket: Ticket, *, actor: Any, run: TerraformRun | None = None) -> None:
    """Re-score a locked ticket from its questionnaire and ``run``'s plan (None: no plan yet),
    save it and audit the change. Called inside the caller's transaction."""
    try:
        extra = data_resources.parse_extra(ticket.environment.data_resource_types)
    except ValueError:  # refused when saved; an entry edited around the form counts nothing
        extra = ()
    assessed = risk.assess(ticket.risk_assessment, run.summary if run is not None else None, extra)
    assessed["plan_run"] = run.pk if run is not None else None
    previous = ticket.risk or {}
    ticket.risk = assessed
    ticket.save(update_fields=["risk", "updated_at"])
    audit_record(
        actor=actor,
        action="ticket.risk",
        ticket=ticket,
        data={
            "run": assessed["plan_run"],
            "score": assessed["score"],
            "level": assessed["level"],
            "from_level": previous.get("level", ""),
            "components": assessed["blast_radius"]["components"],
            "destructive": assessed["blast_radius"]["destructive"],
            "data_reasons": [
                item["data_reason"]
                for key in ("deletes", "replaces", "forgets")
                for item in assessed["blast_radius"][key]
                if item["data_reason"]
            ][:10],
        },
    )


def risk_rescore(ticket: Ticket, run: TerraformRun) -> None:
    """After a plan (services.lifecycle.after_plan): the ticket scored with its blast radius."""
    ticket_risk_refresh(ticket, actor="worker", run=run)
