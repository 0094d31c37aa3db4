"""Completing a follow-up (a post-deployment review or a post-mortem) from the ticket page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deployments import policy, selectors, services
from deployments.lib import validation
from deployments.pages.actions import refuse


@login_required
@require_POST
def follow_up_complete(request: HttpRequest, pk: int, fid: int) -> HttpResponse:
    """The review form on the ticket page (works without JavaScript)."""
    ticket = selectors.ticket_get(request.user, pk)
    follow_up = ticket.follow_ups.filter(pk=fid).first()
    if follow_up is None:
        raise Http404("no such follow-up on this ticket")
    fields = ("what_happened", "impact", "root_cause", "actions")
    try:
        services.follow_up_complete(
            follow_up_id=follow_up.pk,
            actor=request.user,
            **{
                name: validation.clean_text(
                    request.POST.get(name, ""), name, validation.DESCRIPTION_MAX
                )
                for name in fields
            },
        )
    except policy.PolicyError as exc:
        refuse(request, exc)
    except services.InputError as exc:
        refuse(request, exc, prefix=f"{follow_up.get_kind_display()} not saved: ")
        # Keep what was typed, so nothing is lost on a refusal.
        request.session[f"followup-draft-{follow_up.pk}"] = {
            name: request.POST.get(name, "")[: validation.DESCRIPTION_MAX] for name in fields
        }
    else:
        request.session.pop(f"followup-draft-{follow_up.pk}", None)
        messages.success(request, f"{follow_up.get_kind_display()} completed.")
    return redirect(f"/tickets/{ticket.pk}/#follow-ups")
