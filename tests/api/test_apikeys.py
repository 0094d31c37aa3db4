"""API keys: stored as a SHA-256 digest only, scoped, expiring, revocable, audited, and
through the same step-up rules as every other path."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from deployments.models import ApiKey, AuditEvent
from deployments.services import InputError
from deployments.services.apikeys import api_key_create, api_key_revoke
from tests.helpers.keys import keyed, new_key
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db


def test_the_database_never_holds_the_secret(author: User) -> None:
    key = new_key(author, name="laptop")
    row = ApiKey.objects.get(user=author)
    assert row.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.prefix) and len(key) > len(row.prefix) + 32
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM deployments_apikey")
        stored = json.dumps(cursor.fetchall(), default=str)
    assert key not in stored and key[len(row.prefix) :] not in stored
    audit = json.dumps([e.data for e in AuditEvent.objects.all()])
    assert key not in audit and row.prefix in audit
    assert keyed(key).get("/api/v1/tickets/").status_code == 200


def test_a_wrong_or_malformed_key_is_401(author: User) -> None:
    key = new_key(author)
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "ccp_nothing", "x" * 300, "é"):
        response = keyed(bad).get("/api/v1/tickets/")
        assert response.status_code == 401, bad
        assert response.json()["detail"]
    assert APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION="Token a b").status_code == 401


def test_a_bearer_key_is_the_same_key(author: User) -> None:
    """Generated clients send `Authorization: Bearer <key>`: accepted like `Token`, with
    the same checks (a wrong or revoked key is 401 with the reason either way)."""
    key = new_key(author, name="generated client")
    for scheme in ("Bearer", "bearer", "Token"):
        response = APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert response.status_code == 200, (scheme, response.json())
    wrong = APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Bearer {key[:-1]}x")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid API key."
    api_key_revoke(actor=author, key_id=ApiKey.objects.get(name="generated client").pk, user=author)
    revoked = APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert revoked.status_code == 401 and "was revoked" in revoked.json()["detail"]
    assert APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION="Bearer").status_code == 401


def test_revoked_and_expired_keys_are_401_with_the_reason(author: User) -> None:
    revoked = new_key(author, name="old laptop")
    assert keyed(revoked).get("/api/v1/tickets/").status_code == 200
    api_key_revoke(actor=author, key_id=ApiKey.objects.get(name="old laptop").pk, user=author)
    response = keyed(revoked).get("/api/v1/tickets/")
    assert response.status_code == 401
    assert "was revoked" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"

    expiring = new_key(author, name="ci", expires_days=7)
    assert keyed(expiring).get("/api/v1/tickets/").status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(days=7, seconds=1)):
        response = keyed(expiring).get("/api/v1/tickets/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_last_used_is_written_at_most_once_a_minute(author: User) -> None:
    key = new_key(author)
    row = ApiKey.objects.get(user=author)
    assert row.last_used_at is None
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        keyed(key).get("/api/v1/tickets/")
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        keyed(key).get("/api/v1/tickets/")
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        keyed(key).get("/api/v1/tickets/")
    row.refresh_from_db()
    assert row.last_used_at == start + dt.timedelta(seconds=61)


def test_a_ci_key_files_and_plans_but_may_not_approve_reject_deploy_or_cancel(
    author: User, lead: User, head_sha: str
) -> None:
    ci = keyed(new_key(lead, name="github", scope="ci"))
    response = ci.post("/api/v1/tickets/", {"title": "from CI", "environment": "dev"}, "json")
    assert response.status_code == 201, response.json()
    assert ci.get(f"/api/v1/tickets/{response.json()['id']}/").status_code == 200
    ticket = awaiting("staging", author)
    for verb, body in (
        ("approve", {"plan_sha256": ticket.current_plan.plan_sha256}),
        ("reject", {"reason": "no"}),
        ("deploy", {}),
        ("cancel", {"reason": "no"}),
    ):
        refused = ci.post(f"/api/v1/tickets/{ticket.pk}/{verb}/", body, "json")
        assert refused.status_code == 403, verb
        assert "scope 'ci'" in refused.json()["detail"] and verb in refused.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.approvals.count() == 0 and ticket.status == "awaiting_approval"
    # The same person's full key may approve.
    full = keyed(new_key(lead, name="laptop"))
    approve = full.post(
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
        "json",
    )
    assert approve.status_code == 200, approve.json()


def test_an_unenrolled_leads_key_is_refused(lead: User, settings: Any) -> None:
    key = new_key(lead)
    settings.MFA_REQUIRED_FOR_LEADS = True
    response = keyed(key).get("/api/v1/tickets/")
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]


def test_create_api_token_prints_a_scoped_expiring_key(author: User) -> None:
    out = io.StringIO()
    call_command(
        "create_api_token",
        "alice",
        "--name",
        "github",
        "--scope",
        "ci",
        "--expires-days",
        "30",
        stdout=out,
    )
    key = out.getvalue().strip()
    row = ApiKey.objects.get(user=author)
    assert (row.name, row.scope) == ("github", "ci")
    assert row.expires_at is not None
    assert abs((row.expires_at - timezone.now()) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    assert keyed(key).get("/api/v1/tickets/").status_code == 200


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("name", {"name": ""}),
        ("name", {"name": "x" * 101}),
        ("scope", {"scope": "admin"}),
        ("expires_days", {"expires_days": "0"}),
        ("expires_days", {"expires_days": "-3"}),
        ("expires_days", {"expires_days": "٣"}),
        ("expires_days", {"expires_days": "99999"}),
    ],
)
def test_bad_key_input_is_refused_and_nothing_is_written(
    author: User, field: str, options: dict[str, Any]
) -> None:
    with pytest.raises(InputError) as refused:
        api_key_create(actor=author, user=author, **{"name": "ok", **options})
    assert refused.value.field == field
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.filter(action="account.api_key_create").exists()


def test_existing_drf_tokens_become_hashed_keys_that_still_work(author: User) -> None:
    from importlib import import_module

    from rest_framework.authtoken.models import Token

    legacy = Token.objects.create(user=author).key
    migration = import_module("deployments.migrations.0015_api_keys_idempotency")
    migration.hash_drf_tokens(apps, None)
    assert not Token.objects.exists()
    row = ApiKey.objects.get(user=author)
    assert row.prefix == legacy[:8] and row.digest == hashlib.sha256(legacy.encode()).hexdigest()
    assert keyed(legacy).get("/api/v1/tickets/").status_code == 200
