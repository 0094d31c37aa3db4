"""The monitoring section's forms on the ticket page: sign a checklist item off, acknowledge
an alarm, complete the ticket (the same services as the API; the section itself is
TicketView.monitoring)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.views.decorators.http import require_POST

from deployments import selectors
from deployments.pages.actions import Done, page_action, to_ticket
from deployments.services import monitoring as service


@login_required
@require_POST
@page_action(back=to_ticket("monitoring"))
def checklist_sign(request: HttpRequest, pk: int, key: str) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    service.checklist_sign(
        ticket_id=ticket.pk, key=key, actor=request.user, note=request.POST.get("note", "")
    )
    return Done("Checklist item signed off.")


@login_required
@require_POST
@page_action(back=to_ticket("monitoring"))
def alarm_acknowledge(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    service.alarm_acknowledge(
        ticket_id=ticket.pk, actor=request.user, note=request.POST.get("note", "")
    )
    return Done("Alarm acknowledged.")


@login_required
@require_POST
@page_action(back=to_ticket("monitoring"))
def ticket_complete(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    service.ticket_complete(ticket_id=ticket.pk, actor=request.user)
    return Done("Ticket completed.")
