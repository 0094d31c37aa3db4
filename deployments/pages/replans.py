"""``POST /tickets/<pk>/replan-reschedule/``: re-plan a scheduled ticket whose plan went
stale and keep its slot, in one step (services.replans)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.views.decorators.http import require_POST

from deployments import selectors
from deployments.lib import validation
from deployments.pages.actions import Done, page_action, to_ticket
from deployments.services import replans


@login_required
@require_POST
@page_action(back=to_ticket())
def ticket_replan_reschedule(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    replans.ticket_replan_reschedule(
        ticket_id=ticket.pk,
        actor=request.user,
        reason=validation.clean_text(request.POST.get("reason", ""), "reason", 200),
    )
    return Done(
        "A new plan has been queued. Once it is approved the ticket is scheduled again for "
        "its slot (you will be told if the slot can no longer be kept)."
    )
