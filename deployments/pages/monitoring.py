"""The monitoring section of the ticket page: countdown, check history, alarm banner,
checklist sign-off forms and the complete button (same services as the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deployments import policy, selectors
from deployments.services import InputError
from deployments.services import monitoring as service


def _back(ticket_id: int, anchor: str = "monitoring") -> HttpResponse:
    return redirect(f"/tickets/{ticket_id}/#{anchor}")


def _run(request: HttpRequest, pk: int, call: Any, done: str) -> HttpResponse:
    ticket = selectors.ticket_get(request.user, pk)
    try:
        call(ticket)
    except (policy.PolicyError, InputError) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back(ticket.pk)


@login_required
@require_POST
def checklist_sign(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    return _run(
        request,
        pk,
        lambda t: service.checklist_sign(
            ticket_id=t.pk, key=key, actor=request.user, note=request.POST.get("note", "")
        ),
        "Checklist item signed off.",
    )


@login_required
@require_POST
def alarm_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(
        request,
        pk,
        lambda t: service.alarm_acknowledge(
            ticket_id=t.pk, actor=request.user, note=request.POST.get("note", "")
        ),
        "Alarm acknowledged.",
    )


@login_required
@require_POST
def ticket_complete(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(
        request,
        pk,
        lambda t: service.ticket_complete(ticket_id=t.pk, actor=request.user),
        "Ticket completed.",
    )
