"""Step-up security: leads must enrol an authenticator app before using the portal."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .policy import LEAD_ROLES
from .selectors import user_roles

# Sign-in, MFA enrolment, the API (token auth) and machine endpoints stay reachable.
EXEMPT_PREFIXES = ("/accounts/", "/api/", "/static/", "/healthz", "/admin/logout/")


class RequireMFAForLeads:
    """With MFA_REQUIRED_FOR_LEADS, a lead without TOTP is sent to enrol first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.MFA_REQUIRED_FOR_LEADS
            and request.user.is_authenticated
            and not request.path.startswith(EXEMPT_PREFIXES)
            and user_roles(request.user) & LEAD_ROLES
            and not _has_totp(request.user)
        ):
            messages.warning(
                request,
                "Approvers must use two-factor authentication: set up an authenticator app "
                "to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


def _has_totp(user: object) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
