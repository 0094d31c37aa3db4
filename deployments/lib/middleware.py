"""Pages: a lead who must enrol an authenticator app is sent to enrolment (lib.stepup)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from deployments.lib import stepup
from deployments.services.audit import refusal_record

# Sign-in, MFA enrolment and machine endpoints stay reachable; the API refuses un-enrolled
# leads itself with a 403 naming the reason (deployments.api.support.permissions.StepUp).
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


# Why a request was refused, set by whoever refused it (API exception handler, handler403,
# a page that shows "you may not ..."); the middleware below records it once.
REFUSAL_ATTRIBUTE = "_audit_refusal_reason"


def note_refusal(request: object, reason: str) -> None:
    """Say why this request was refused (the audit record names it)."""
    target = getattr(request, "_request", request)  # a DRF Request wraps the HttpRequest
    setattr(target, REFUSAL_ATTRIBUTE, reason)


def note_refusal_if_actor(request: object, exc: BaseException) -> None:
    """For pages that answer a refusal with a message: record it when the rule refused
    the person (PolicyError of kind actor), not when the ticket's state did."""
    from deployments.policy import PolicyError

    if isinstance(exc, PolicyError) and (exc.kind == PolicyError.ACTOR or "policies" in exc.data):
        note_refusal(request, exc.message)  # the person, or the plan's Rego policies


class AuditRefusals:
    """Every refusal of a signed-in person is an audit event (action ``access.refused``):
    every 403 from the API and the pages, and the page refusals that answer with a
    message instead (they call note_refusal). One row per refusal; anonymous callers
    are not recorded (401, or the sign-in page)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        reason = getattr(request, REFUSAL_ATTRIBUTE, None)
        if response.status_code == 403 or reason is not None:
            user = getattr(request, "user", None)
            if getattr(user, "is_authenticated", False):
                refusal_record(
                    user=user,
                    method=request.method or "",
                    path=request.get_full_path(),
                    reason=reason or _reason_of(response),
                    status=response.status_code,
                    ticket_id=refused_ticket_id(request),
                )
        return response


# Routes whose ``pk`` is a ticket's (pages, and the API's ticket viewset and its actions).
_PAGE_TICKET_ROUTES = frozenset(
    {
        "evidence_upload",
        "evidence_signoff",
        "evidence_withdraw",
        "checklist_sign",
        "alarm_acknowledge",
        "follow_up_complete",
    }
)


def refused_ticket_id(request: HttpRequest) -> int | None:
    """The ticket a refused request was about, from the route it matched: a ticket's page
    or API action, a run (its ticket) or a notification (its ticket); None for the rest."""
    from deployments.models import TerraformRun
    from notifications.models import Notification

    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    raw = match.kwargs.get("pk")
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        return None
    name = match.url_name or ""
    if match.namespace == "api":
        if name.startswith("ticket-"):
            return pk
        if name.startswith("run-"):
            return TerraformRun.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
        if name.startswith("notification-"):
            return Notification.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
        return None
    if match.namespace:
        return None
    if (name.startswith("ticket_") and name not in {"ticket_list", "ticket_new"}) or (
        name in _PAGE_TICKET_ROUTES
    ):
        return pk
    if name == "run_log":
        return TerraformRun.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
    if name == "notification_retry":
        return Notification.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
    return None


def _reason_of(response: HttpResponse) -> str:
    data = getattr(response, "data", None)  # a DRF Response
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return data["detail"]
    return "forbidden"


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
