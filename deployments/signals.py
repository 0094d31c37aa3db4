"""Django's sign-in signals, forwarded to the accounts services (no logic here)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from .services import accounts


@receiver(user_logged_in, dispatch_uid="deployments.audit_signin")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    accounts.signin_record(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="deployments.audit_signin_failed")
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the name tried: Django masks secrets in ``credentials``, and we keep none of them.
    name = credentials.get("username") or credentials.get("login") or credentials.get("email")
    accounts.signin_failure_record(username=str(name or ""), request=request)
