"""Pages: a lead who must enrol an authenticator app is sent to enrolment (deployments.stepup)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from . import stepup

# Sign-in, MFA enrolment and machine endpoints stay reachable; the API refuses un-enrolled
# leads itself with a 403 naming the reason (deployments.api.permissions.StepUp).
EXEMPT_PREFIXES = ("/accounts/", "/api/", "/static/", "/healthz", "/admin/logout/")


class RequireMFAForLeads:
    """With MFA_REQUIRED_FOR_LEADS, a lead without TOTP is sent to enrol first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(EXEMPT_PREFIXES) and stepup.must_enrol_mfa(request.user):
            messages.warning(
                request,
                "Approvers must use two-factor authentication: set up an authenticator app "
                "to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


class ServerTiming:
    """``Server-Timing: app;dur=<ms>`` on every response: the time Django spent on the
    request, from the first middleware to the last (benchmarks/pages_bench.py reads it;
    browsers show it in their network panel). It discloses no more than a stopwatch would."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response
