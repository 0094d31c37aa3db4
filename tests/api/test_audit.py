"""GET /api/v1/audit/ and the /audit/ page: who reads the trail, filters, cursor pages,
streamed exports, the last verification, and refusals recorded as audit events."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from deployments import services
from deployments.api import audit as audit_api
from deployments.models import AuditEvent, Environment
from tests.helpers.api import api_for
from tests.helpers.factories import TicketFactory
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.django_db


def _record(n: int, *, ticket: Any = None, actor: Any = "system", action: str = "test.e") -> list:
    with transaction.atomic():
        return [
            services.audit_record(actor=actor, action=action, ticket=ticket, data={"i": i})
            for i in range(n)
        ]


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def superuser(outsider: User) -> User:
    outsider.is_superuser = outsider.is_staff = True
    outsider.save()
    return outsider


def _page(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- who ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["operations", "lead", "tech_lead", "devops_lead"])
def test_operations_and_leads_read_the_trail(persona: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(persona)
    events = _record(2)
    response = api_for(user).get("/api/v1/audit/")
    assert _ids(response) == [events[1].pk, events[0].pk]  # newest first
    row = response.json()["results"][0]
    assert set(row) == {
        "id",
        "at",
        "actor",
        "actor_id",
        "action",
        "ticket",
        "data",
        "prev_hash",
        "hash",
    }
    assert row["prev_hash"] == events[0].hash and row["hash"] == events[1].hash
    assert row["data"] == {"i": 1} and row["actor"] == "system" and row["ticket"] is None


def test_staff_read_the_trail(outsider: User) -> None:
    outsider.is_staff = True
    outsider.save()
    _record(1)
    assert len(_ids(api_for(outsider).get("/api/v1/audit/"))) == 1


@pytest.mark.parametrize("persona", ["author", "qa", "outsider"])
def test_others_are_refused_and_the_refusal_is_recorded(
    persona: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(persona)
    response = api_for(user).get("/api/v1/audit/?action=ticket.*")
    assert response.status_code == 403
    assert response.json()["detail"] == "The audit trail is for operations and the leads."
    refusal = AuditEvent.objects.get(action="access.refused")
    assert refusal.actor == user
    assert refusal.data == {
        "method": "GET",
        "path": "/api/v1/audit/?action=ticket.*",
        "reason": "The audit trail is for operations and the leads.",
        "status": 403,
    }
    assert services.audit_verify()[0]


def test_anonymous_callers_get_401_and_no_event() -> None:
    assert api_for(None).get("/api/v1/audit/").status_code == 401
    assert Client().get("/audit/").status_code == 302  # to sign-in
    assert not AuditEvent.objects.exists()


def test_prod_events_only_for_those_who_see_prod(lead: User, tech_lead: User) -> None:
    prod = TicketFactory(environment=Environment.objects.get(name="prod"))
    dev = TicketFactory()
    (prod_event,) = _record(1, ticket=prod)
    (dev_event,) = _record(1, ticket=dev)
    (plain,) = _record(1)
    assert _ids(api_for(lead).get("/api/v1/audit/")) == [plain.pk, dev_event.pk]
    assert _ids(api_for(lead).get(f"/api/v1/audit/?ticket={prod.pk}")) == []
    exported = api_for(lead).get("/api/v1/audit/?format=jsonl")
    assert prod_event.pk not in [json.loads(x)["id"] for x in _body(exported).splitlines()]
    assert _ids(api_for(tech_lead).get("/api/v1/audit/")) == [
        plain.pk,
        dev_event.pk,
        prod_event.pk,
    ]
    page = _page(lead).get("/audit/")
    assert f'id="audit-{prod_event.pk}"' not in page.content.decode()
    assert f'id="audit-{dev_event.pk}"' in page.content.decode()


# --- filters and pages -------------------------------------------------------------


def test_filters(operations: User, tech_lead: User) -> None:
    ticket = TicketFactory()
    a = _record(1, ticket=ticket, actor=tech_lead, action="approval.grant")[0]
    b = _record(1, ticket=ticket, action="ticket.transition")[0]
    c = _record(1, action="ticket.create")[0]
    client = api_for(operations)
    assert _ids(client.get(f"/api/v1/audit/?ticket={ticket.pk}")) == [b.pk, a.pk]
    assert _ids(client.get("/api/v1/audit/?actor=tess")) == [a.pk]
    assert _ids(client.get("/api/v1/audit/?action=ticket.transition")) == [b.pk]
    assert _ids(client.get("/api/v1/audit/?action=ticket.*")) == [c.pk, b.pk]
    assert _ids(client.get("/api/v1/audit/?action=ticket.")) == [c.pk, b.pk]
    assert _ids(client.get("/api/v1/audit/?action=ticket")) == []
    since = b.at.isoformat()
    assert _ids(client.get("/api/v1/audit/", {"since": since})) == [c.pk, b.pk]
    assert _ids(client.get("/api/v1/audit/", {"until": since})) == [a.pk]
    assert _ids(client.get("/api/v1/audit/", {"since": "2000-01-01", "actor": "system"})) == [
        c.pk,
        b.pk,
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-05-02&until=2026-05-01", "until"),
        ("ticket=abc", "ticket"),
        ("ticket=-1", "ticket"),
        ("actor=%00", "actor"),
        ("action=" + "a" * 151, "action"),
        ("cursor=not-a-cursor", "cursor"),
        ("format=xml", "format"),
        ("limit=0", "limit"),
        ("limit=null&limit=null", "limit"),
        ("until=", "until"),
        ("ticket=", "ticket"),
        ("since=0001-01-01T00:10:00%2B23:31", "since"),  # before year 1 in UTC
    ],
)
def test_bad_filters_are_400_naming_the_field(operations: User, query: str, field: str) -> None:
    _record(1)
    # An export is every matching event: it takes no cursor or limit.
    exports = [] if field in ("cursor", "format", "limit") else ["&format=jsonl", "&format=csv"]
    suffixes = ["", *exports]
    for suffix in suffixes:
        response = api_for(operations).get(f"/api/v1/audit/?{query}{suffix}")
        assert response.status_code == 400, (query, suffix)
        assert response["Content-Type"] == "application/json"
        assert field in response.json()["detail"]


def test_offsets_postgresql_refuses_are_taken_in_utc(operations: User) -> None:
    """ISO 8601 allows +23:31; PostgreSQL refuses offsets past ±15:59 (a 500 found by
    schemathesis, in the list and in the streamed export)."""
    _record(2)
    query = "since=0292-10-16T19:36:24%2B23:31&until=2999-11-10T19:36:24-23:59"
    response = api_for(operations).get(f"/api/v1/audit/?{query}")
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    export = api_for(operations).get(f"/api/v1/audit/?{query}&format=jsonl")
    assert export.status_code == 200
    assert len(b"".join(export.streaming_content).splitlines()) == 2
    with connection.cursor() as cursor:  # the connection is still usable
        cursor.execute("SELECT 1")


def test_cursor_pages_walk_newest_to_oldest(operations: User) -> None:
    events = _record(7)
    client = api_for(operations)
    seen: list[int] = []
    url = "/api/v1/audit/?limit=3"
    while url:
        body = client.get(url).json()
        assert "count" not in body  # no COUNT over the table
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == [e.pk for e in reversed(events)]


# --- exports ---------------------------------------------------------------------


def _body(response: Any) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_jsonl_export_streams_every_matching_event(
    operations: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_api, "EXPORT_CHUNK", 3)  # several keyset pages
    ticket = TicketFactory()
    events = _record(8, ticket=ticket, action="ticket.note")
    _record(2)  # not of the ticket
    response = api_for(operations).get(f"/api/v1/audit/?format=jsonl&ticket={ticket.pk}")
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    rows = [json.loads(line) for line in _body(response).splitlines()]
    assert [r["id"] for r in rows] == [e.pk for e in reversed(events)]
    assert rows[0]["hash"] == events[-1].hash and rows[0]["prev_hash"] == events[-2].hash
    assert rows[-1]["data"] == {"i": 0} and rows[-1]["ticket"] == ticket.pk


def test_csv_export_has_a_header_and_data_as_json(
    operations: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_api, "EXPORT_CHUNK", 2)
    events = _record(5, action="test.csv")
    response = api_for(operations).get("/api/v1/audit/?format=csv&action=test.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [int(r["id"]) for r in rows] == [e.pk for e in reversed(events)]
    assert json.loads(rows[0]["data"]) == {"i": 4}
    assert rows[0]["ticket"] == "" and rows[0]["actor"] == "system"
    assert rows[0]["hash"] == events[-1].hash


def _auditor_script() -> str:
    text = (ROOT / "docs" / "audit.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_auditor_script_verifies_an_export(superuser: User, tmp_path: Path) -> None:
    """docs/audit.md's script re-verifies an export without the portal, and catches an edit."""
    ticket = TicketFactory()
    _record(3, ticket=ticket, actor=superuser, action="ticket.note")
    _record(2)  # and events of no ticket, by the portal
    export = tmp_path / "audit.jsonl"
    export.write_text(_body(api_for(superuser).get("/api/v1/audit/?format=jsonl")))
    script = tmp_path / "verify_export.py"
    script.write_text(_auditor_script())
    done = subprocess.run(
        [sys.executable, str(script), str(export)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("5 events, chain intact; head ")
    lines = export.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["data"]["i"] = 99
    lines[2] = json.dumps(edited)
    export.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, str(script), str(export)], capture_output=True, text=True
    )
    assert done.returncode == 1 and f"event {edited['id']}: altered" in done.stderr


# --- query budgets -----------------------------------------------------------------


@pytest.mark.parametrize("rows", [3, 20])
def test_api_query_budget(
    operations: User, lead: User, rows: int, django_assert_max_num_queries: Any
) -> None:
    for _ in range(rows):
        _record(1, ticket=TicketFactory(), actor=lead)
    client = api_for(lead)
    with django_assert_max_num_queries(6):
        assert len(_ids(client.get("/api/v1/audit/"))) == rows
    with django_assert_max_num_queries(6):
        assert len(_body(client.get("/api/v1/audit/?format=jsonl")).splitlines()) == rows


@pytest.mark.parametrize("rows", [3, 20])
def test_page_query_budget(lead: User, rows: int, django_assert_max_num_queries: Any) -> None:
    for _ in range(rows):
        _record(1, ticket=TicketFactory(), actor=lead)
    client = _page(lead)
    client.get("/audit/")  # session and MFA state warmed up
    with django_assert_max_num_queries(10):
        response = client.get("/audit/?action=test.e")
    assert response.content.decode().count('<tr id="audit-') == rows


# --- the page ----------------------------------------------------------------------


def test_page_lists_filters_and_pages_back(
    operations: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.pages import audit as views_audit

    monkeypatch.setattr(views_audit, "PAGE_SIZE", 3)
    ticket = TicketFactory(title="Bump the cache size")
    events = _record(5, ticket=ticket, action="ticket.note")
    _record(1, action="other.thing")
    client = _page(operations)
    html = client.get(f"/audit/?ticket={ticket.pk}").content.decode()
    assert html.count('<tr id="audit-') == 3
    assert f'href="/tickets/{ticket.pk}/"' in html and "Bump the cache size" in html
    assert f"ticket={ticket.pk}&amp;before={events[2].pk}" in html  # the older link
    assert f"/api/v1/audit/?ticket={ticket.pk}&amp;format=jsonl" in html
    assert f"/api/v1/audit/?ticket={ticket.pk}&amp;format=csv" in html
    older = client.get(f"/audit/?ticket={ticket.pk}&before={events[2].pk}").content.decode()
    assert [f'id="audit-{e.pk}"' in older for e in events] == [True, True, False, False, False]
    assert 'id="audit-older"' not in older and 'id="audit-newest"' in older
    assert "<dt>i</dt><dd>4</dd>" in html  # data shown as key and value


def test_page_bad_filter_is_a_form_error(operations: User) -> None:
    _record(2)
    response = _page(operations).get("/audit/?since=soon")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="audit-error"' in html and "since: must be an ISO 8601" in html
    assert '<tr id="audit-' not in html
    # The form's empty fields mean "any".
    blank = _page(operations).get("/audit/?ticket=&actor=&action=&since=&until=")
    assert blank.content.decode().count('<tr id="audit-') >= 2


def test_page_and_nav_link_only_for_readers(operations: User, author: User) -> None:
    assert 'id="nav-audit"' in _page(operations).get("/").content.decode()
    assert 'id="nav-audit"' not in _page(author).get("/").content.decode()
    assert _page(author).get("/audit/").status_code == 403
    refusal = AuditEvent.objects.get(action="access.refused")
    assert refusal.actor == author and refusal.data["path"] == "/audit/"


def test_page_rechecks_the_events_it_shows(operations: User) -> None:
    from deployments.lib import audit_guard

    events = _record(3)
    client = _page(operations)
    assert 'id="audit-shown-ok"' in client.get("/audit/?actor=system").content.decode()
    with audit_guard.lifted(connection):
        AuditEvent.objects.filter(pk=events[1].pk).update(data={"i": 7})
    html = client.get("/audit/?actor=system").content.decode()
    assert 'id="audit-shown-problem"' in html
    assert f"event {events[1].pk} was altered" in html


def test_page_shows_the_last_verification(operations: User) -> None:
    client = _page(operations)
    assert "not verified yet" in client.get("/audit/").content.decode()
    _record(3)
    call_command("verify_audit")
    html = client.get("/audit/").content.decode()
    # 3, and the sign-in of force_login
    assert "chain intact" in html and "4 events verified" in html
