"""Django's sign-in signals, forwarded to the accounts services, and embedded mode's SQLite
files kept private."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpRequest

from deployments.services import accounts


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


@receiver(connection_created, dispatch_uid="deployments.private_sqlite_files")
def _private_sqlite_files(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Embedded mode's database holds sessions, TOTP secrets and API key digests: like plan
    files, readable only by the portal's user. SQLite gives its WAL files the database
    file's mode, so fixing the database once covers them from then on."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    for path in (name, f"{name}-wal", f"{name}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            # Someone else's file (a shared read-only copy) is not ours to change.
            with contextlib.suppress(PermissionError):
                os.chmod(path, mode & 0o700)
