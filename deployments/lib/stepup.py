"""Step-up security, in one place: every entry point (pages, session API, token API) asks here.

Two rules:

- MFA enrolment: with ``MFA_REQUIRED_FOR_LEADS``, a user holding a lead role who has no
  authenticator app cannot act as a lead by any path until enrolled. Pages redirect to
  enrolment (``deployments.lib.middleware``); the API answers 403 naming the reason
  (``deployments.api.support.permissions``) and the calendar feed, whose token is a credential too,
  answers 403 (``deployments.pages.calendar``).
- Recent authentication: approving or deploying where the environment asks for it
  (``Environment.step_up_auth``, prod) needs a sign-in or re-authentication within
  ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` seconds in this browser session. Pages send the user
  to allauth's re-authentication (which replays the stashed POST); a session-authenticated
  API call gets 403 naming re-authentication. A token request carries no browser session:
  the token is a long-lived machine credential, so the re-authentication rule does not apply
  to it (tokens of un-enrolled leads are refused by the MFA rule).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from deployments.models import Environment
from deployments.policy import LEAD_ROLES, PolicyError
from deployments.selectors import user_roles

# The verbs that need a recent authentication where the environment asks for it.
STEP_UP_ACTIONS = frozenset(
    {"approve", "deploy", "schedule", "unschedule", "evidence_signoff", "policy_override"}
)

MFA_ENROL_URL = "/accounts/2fa/"
REAUTHENTICATE_URL = "/accounts/reauthenticate/"

MFA_REQUIRED_MESSAGE = (
    "Approvers must use two-factor authentication: enrol an authenticator app at "
    f"{MFA_ENROL_URL} before acting as a lead (pages or API)."
)


def reauthentication_message(environment: Environment) -> str:
    """The sentence a refused session caller sees."""
    return (
        f"Approving or deploying to {environment.name} needs a recent sign-in: sign in again "
        f"at {REAUTHENTICATE_URL} (re-authentication is valid for "
        f"{settings.ACCOUNT_REAUTHENTICATION_TIMEOUT} seconds), then retry."
    )


def has_totp(user: Any) -> bool:
    """Whether the user has enrolled an authenticator app."""
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def must_enrol_mfa(user: Any) -> bool:
    """A lead who must enrol MFA first and has not: they may not act by any path."""
    if not settings.MFA_REQUIRED_FOR_LEADS or not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_portal_must_enrol_mfa", None)
    if cached is None:
        cached = bool(user_roles(user) & LEAD_ROLES) and not has_totp(user)
        user._portal_must_enrol_mfa = cached
    return bool(cached)


def check_mfa(user: Any) -> None:
    """Refuse an un-enrolled lead (403 through the API's exception handler)."""
    if must_enrol_mfa(user):
        raise PolicyError(MFA_REQUIRED_MESSAGE, PolicyError.ACTOR)


def recently_authenticated(request: HttpRequest) -> bool:
    """Signed in or re-authenticated in this session within the re-authentication timeout."""
    from allauth.account.internal.flows.login import get_authentication_records

    records = get_authentication_records(request, request.user)
    if not records:
        return False
    latest = max(float(r.get("at", 0)) for r in records)
    return time.time() - latest < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def needs_reauthentication(request: HttpRequest, environment: Environment) -> bool:
    """Whether a browser-session request must re-authenticate before approve/deploy here."""
    return environment.step_up_auth and not recently_authenticated(request)


def check_session_reauthentication(request: HttpRequest, environment: Environment) -> None:
    """Refuse a stale browser session on a step-up environment (403 naming the fix)."""
    if needs_reauthentication(request, environment):
        raise PolicyError(reauthentication_message(environment), PolicyError.ACTOR)
