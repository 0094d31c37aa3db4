"""How a page acts: one decorator for every form that changes something and goes back.

A page action calls a service. When a rule refuses (``PolicyError``) or the input is bad
(``InputError``) it says so in a message and goes back; a refusal of the person (a 403 in
the API) is also audited as ``access.refused`` with the ticket the page is about, so only
those who see that ticket read it (lib.middleware.AuditRefusals records it; the route
names the ticket). Every page refuses the same way, and none forgets the audit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from allauth.core.exceptions import ReauthenticationRequired
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

from deployments import selectors
from deployments.lib import stepup
from deployments.lib.middleware import note_refusal_if_actor
from deployments.lib.validation import InputError
from deployments.policy import PolicyError


@dataclass(frozen=True)
class Done:
    """What a page action did: the message shown, and where to go ("" = back)."""

    message: str
    to: str = ""


Back = Callable[..., str]
ActionView = Callable[..., "Done | HttpResponseBase"]


def refusal_text(exc: PolicyError | InputError) -> str:
    """The sentence a page shows: a rule's own, or the bad field named ("reason must be at
    most 2000 characters")."""
    if isinstance(exc, InputError) and exc.message.startswith("must"):
        return f"{exc.field} {exc.message}"
    return exc.message


def refuse(
    request: HttpRequest, exc: PolicyError | InputError, *, prefix: str = "", suffix: str = ""
) -> None:
    """Show a refusal, audited when it refused the person (forms that stay on their page
    call this too)."""
    note_refusal_if_actor(request, exc)
    messages.error(request, f"{prefix}{refusal_text(exc)}{suffix}")


def to_ticket(anchor: str = "") -> Back:
    """Back to the ticket page of the route's ``pk`` (at ``#anchor``)."""

    def back(*, pk: int, **_: Any) -> str:
        url = reverse("ticket_detail", args=[pk])
        return f"{url}#{anchor}" if anchor else url

    return back


def page_action(back: Back) -> Callable[[ActionView], Callable[..., HttpResponseBase]]:
    """Decorate a POST view that returns ``Done`` (or a response of its own): a
    ``PolicyError`` or ``InputError`` it raises becomes a refusal (audited when it refused
    the person) and the way back, ``back(**route kwargs)``."""

    def decorate(view: ActionView) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
            try:
                result = view(request, **kwargs)
            except (PolicyError, InputError) as exc:
                refuse(request, exc)
                return redirect(back(**kwargs))
            if isinstance(result, HttpResponseBase):
                return result
            messages.success(request, result.message)
            return redirect(result.to or back(**kwargs))

        return wrapped

    return decorate


def step_up_for_sensitive_environments(view: Callable[..., Any]) -> Callable[..., Any]:
    """Ask for the password again before approving or deploying where the environment says
    so (prod), by the one rule in lib.stepup (the API asks the same). allauth's middleware
    stashes the POST and replays it after re-authentication."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, pk: int, **kwargs: Any) -> HttpResponse:
        ticket = selectors.ticket_get(request.user, pk)
        if stepup.needs_reauthentication(request, ticket.environment):
            raise ReauthenticationRequired()
        response: HttpResponse = view(request, pk=pk, **kwargs)
        return response

    return wrapped
