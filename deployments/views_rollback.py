"""The rollback pages: the confirm step (what the rollback returns to) and opening it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from . import policy, selectors, services


@login_required
@require_http_methods(["GET", "POST"])
def ticket_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirm step, naming the target deployment; POST: open the rollback ticket
    and go to it. Nothing is filed before the confirm."""
    ticket = selectors.ticket_get(request.user, pk)
    if request.method == "POST":
        try:
            rollback = services.rollback_open(ticket_id=ticket.pk, actor=request.user, source="web")
        except policy.PolicyError as exc:
            messages.error(request, exc.message)
            return redirect(f"/tickets/{ticket.pk}/#rollback")
        messages.success(
            request,
            f"Rollback ticket #{rollback.pk} opened ({rollback.get_rollback_mode_display().lower()}"
            "); its plan is running.",
        )
        return redirect("ticket_detail", pk=rollback.pk)
    choice = selectors.rollback_choice(ticket)
    permission = selectors.ticket_actions(ticket, request.user, timezone.now())["rollback"]
    own = choice.own
    mode = (
        policy.rollback_mode(own.finished_at, timezone.now(), immediate_minutes=_minutes())
        if own is not None
        else ""
    )
    return render(
        request,
        "deployments/ticket_rollback.html",
        {
            "ticket": ticket,
            "choice": choice,
            "target": selectors.known_good_for(request.user, choice.target, ticket.environment),
            "permission": permission,
            "mode": mode,
            "immediate_minutes": _minutes(),
        },
    )


def _minutes() -> int:
    from django.conf import settings

    return int(settings.ROLLBACK_IMMEDIATE_MINUTES)
