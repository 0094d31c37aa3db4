"""The policies section's form on the ticket page: override a soft failure of the current
plan (the same service as the API; the section itself is TicketView.policies)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.views.decorators.http import require_POST

from deployments import selectors
from deployments.pages.actions import (
    Done,
    page_action,
    step_up_for_sensitive_environments,
    to_ticket,
)
from deployments.services import policies as service


@login_required
@require_POST
@step_up_for_sensitive_environments  # lifting a block weighs as much as approving
@page_action(back=to_ticket("policies"))
def policy_override(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    override = service.policy_override(
        ticket_id=ticket.pk,
        policy_name=request.POST.get("policy", ""),
        plan_sha256=request.POST.get("plan_sha256", ""),
        reason=request.POST.get("reason", ""),
        actor=request.user,
    )
    return Done(f"Policy {override.policy} overridden for this plan.")
