"""The rollback pages: the confirm step (what the rollback returns to) and opening it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from deployments import policy, selectors, services
from deployments.pages.actions import Done, page_action, to_ticket


@login_required
@require_http_methods(["GET", "POST"])
def ticket_rollback(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET: the confirm step, naming the target deployment; POST: open the rollback ticket
    and go to it. Nothing is filed before the confirm."""
    if request.method == "POST":
        return _rollback_open(request, pk=pk)
    ticket = selectors.ticket_get(request.user, pk)
    view = selectors.ticket_view(ticket, request.user, timezone.now())
    choice = selectors.rollback_choice(ticket)
    own = choice.own
    minutes = int(settings.ROLLBACK_IMMEDIATE_MINUTES)
    mode = (
        policy.rollback_mode(own.finished_at, timezone.now(), immediate_minutes=minutes)
        if own is not None
        else ""
    )
    return render(
        request,
        "deployments/rollbacks/confirm.html",
        {
            "ticket": ticket,
            "choice": choice,
            "target": selectors.known_good_for(request.user, choice.target, ticket.environment),
            "permission": view.actions["rollback"],
            "mode": mode,
            "immediate_minutes": minutes,
        },
    )


@page_action(back=to_ticket("rollback"))
def _rollback_open(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    rollback = services.rollback_open(ticket_id=ticket.pk, actor=request.user, source="web")
    return Done(
        f"Rollback ticket #{rollback.pk} opened ({rollback.get_rollback_mode_display().lower()}"
        "); its plan is running.",
        to=reverse("ticket_detail", args=[rollback.pk]),
    )
