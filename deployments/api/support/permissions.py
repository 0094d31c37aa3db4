"""The API's default permission: signed in, and through the same step-up rules as the pages."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from deployments import selectors
from deployments.lib import stepup
from deployments.policy import PolicyError


class StepUp(BasePermission):
    """Refuse an un-enrolled lead on every request, and a stale browser session on
    approve/deploy where the environment asks for step-up (prod); see deployments.lib.stepup."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return True  # IsAuthenticated answers for anonymous callers.
        try:
            stepup.check_mfa(user)
            if (
                getattr(view, "action", None) in stepup.STEP_UP_ACTIONS
                and isinstance(request.successful_authenticator, SessionAuthentication)
                and "pk" in getattr(view, "kwargs", {})
            ):
                # 404 (not 403) for a ticket the caller may not see: existence stays hidden.
                ticket = selectors.ticket_get(user, view.kwargs["pk"])
                stepup.check_session_reauthentication(request._request, ticket.environment)
        except PolicyError as exc:
            raise exceptions.PermissionDenied(exc.message) from None
        return True
