"""What the HTTP benchmarks need from inside Django, run as ``python -m benchmarks.inprocess
COMMAND JSON`` against the configuration's database (the environment names it); the last
line printed is the JSON answer.

- ``login {"username": ...}``: a session cookie and an API key for that demo account.
- ``facts {}``: ids the URL table refers to (a ticket with 50 runs, a deep offset...).
- ``queries {"pages": [[name, path, auth], ...], "cookie": ..., "token": ...}``: the
  number of SQL queries each page makes, from a test-client pass (None when it is 404).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    import django

    django.setup()


def login(payload: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from deployments.models import UserPreference
    from deployments.services.apikeys import api_key_create

    user = User.objects.get(username=payload["username"])
    # A chosen time zone, as a returning user has: no first-visit prompt in the way.
    UserPreference.objects.update_or_create(
        user=user, defaults={"timezone": "UTC", "timezone_chosen": True}
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    _, key = api_key_create(actor=user, user=user, name="benchmark", via="benchmark")
    return {"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}", "token": key}


def facts(payload: dict[str, Any]) -> dict[str, Any]:
    from django.db.models import Count

    from deployments.models import TerraformRun, Ticket

    tickets = Ticket.objects.count()
    heavy = (
        TerraformRun.objects.filter(ticket__source="seed")
        .values("ticket_id")
        .annotate(n=Count("id"))
        .filter(n__gte=50)
        .order_by("-ticket_id")
        .values_list("ticket_id", flat=True)
        .first()
    )
    run = (
        TerraformRun.objects.filter(ticket_id=heavy or 0)
        .order_by("-id")
        .values_list("id", flat=True)
    )
    from deployments.api.support.pagination import encode_cursor

    deep_offset = max(0, int(tickets * 0.9) // 50 * 50)
    before = Ticket.objects.order_by("-created_at", "-id").values_list("created_at", "id")[
        max(0, deep_offset - 1) : deep_offset
    ]
    deep_cursor = encode_cursor(*before[0]) if before else ""
    from deployments.policy.evidence import EVIDENCE_CLOSED_STATUSES

    # A ticket that still takes evidence (a finished one keeps its record as it is).
    open_ticket = (
        Ticket.objects.filter(source="seed")
        .exclude(status__in=list(EVIDENCE_CLOSED_STATUSES))
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return {
        "deep_cursor": deep_cursor,
        "tickets": tickets,
        "heavy": heavy,
        "open_ticket": open_ticket,
        "run": run.first(),
        "deep_offset": deep_offset,
        "deep_page": deep_offset // 50 + 1,
    }


def queries(payload: dict[str, Any]) -> dict[str, int | None]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    name, value = payload["cookie"].split("=", 1)
    client = Client()
    client.cookies[name] = value
    api = Client(HTTP_AUTHORIZATION=f"Token {payload['token']}")
    counts: dict[str, int | None] = {}
    for label, path, auth in payload["pages"]:
        chosen = api if auth == "api" else client
        chosen.get(path)  # warm: caches and first-visit work are not the page's
        with CaptureQueriesContext(connection) as ctx:
            response = chosen.get(path)
        counts[label] = len(ctx.captured_queries) if response.status_code != 404 else None
    return counts


COMMANDS = {"login": login, "facts": facts, "queries": queries}


def main() -> None:
    command, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    _setup()
    print(json.dumps(COMMANDS[command](json.loads(raw))))


if __name__ == "__main__":
    main()
