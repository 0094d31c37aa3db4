"""Shared pieces of the services: locked reads and audited transitions (InputError, bad
input, is lib.validation's, re-exported here)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.choices import TicketStatus
from deployments.lib.validation import InputError
from deployments.models import Ticket
from deployments.services.audit import audit_record

__all__ = ["InputError", "infra_repo", "locked_ticket", "transition"]


def transition(
    ticket: Ticket,
    to: TicketStatus,
    *,
    actor: Any,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Move a locked ticket to ``to`` (checked against ALLOWED_TRANSITIONS) and audit it."""
    policy.check_transition(ticket.status, to)
    previous = ticket.status
    now = timezone.now()
    ticket.status = to
    ticket.status_reason = reason
    ticket.status_changed_at = now
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if to == TicketStatus.COMPLETED:
        ticket.completed_at = now
        fields.append("completed_at")
    ticket.save(update_fields=fields)
    audit_record(
        actor=actor,
        action="ticket.transition",
        ticket=ticket,
        data={"from": previous, "to": to.value, "reason": reason, **(data or {})},
    )


def locked_ticket(ticket_id: int) -> Ticket:
    """Re-read a ticket with its row locked for the rest of the transaction."""
    return Ticket.objects.select_for_update().select_related("environment").get(pk=ticket_id)


def infra_repo() -> tf.InfraRepo:
    """The configured infrastructure repository (INFRA_REPO)."""
    return tf.InfraRepo(location=settings.INFRA_REPO, cache_dir=settings.TERRAFORM_HOME)
