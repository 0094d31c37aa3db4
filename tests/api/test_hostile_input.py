"""Hostile input gets a 4xx with a JSON detail, writes nothing, and never breaks a later read.

Runs on SQLite and on PostgreSQL alike (CI runs the suite on PostgreSQL, where a NUL byte
used to be a 500 on write; on SQLite a lone surrogate used to be stored and then broke
every list read).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from deployments.choices import TicketStatus
from deployments.models import Approval, AuditEvent, Environment, Rejection, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

DEEP = 5000


def _ticket_body(**extra: str) -> str:
    """A filing body with raw JSON text spliced in (to send escapes json.dumps would not)."""
    parts = ['"title": "Scale app servers"', '"environment": "dev"']
    parts += [f'"{name}": {raw}' for name, raw in extra.items()]
    return "{" + ", ".join(parts) + "}"


HOSTILE_TICKET_BODIES: dict[str, str | bytes] = {
    "surrogate in description": _ticket_body(description='"\\udfff"'),
    "surrogate in title": '{"title": "a\\ud800b", "environment": "dev"}',
    "surrogate in an object value": _ticket_body(risk_assessment='{"notes": "\\udfff"}'),
    "surrogate in an object key": _ticket_body(rollback_plan='{"\\udfff": "x"}'),
    "NUL in title": '{"title": "a\\u0000b", "environment": "dev"}',
    "NUL in an object value": _ticket_body(risk_assessment='{"notes": "a\\u0000b"}'),
    "NUL in an object key": _ticket_body(risk_assessment='{"a\\u0000": 1}'),
    "nested 5,000 deep": _ticket_body(risk_assessment="[" * DEEP + "]" * DEEP),
    "nested 40 deep": _ticket_body(risk_assessment='{"a": ' * 40 + "1" + "}" * 40),
    "object nested 6 deep": _ticket_body(risk_assessment='{"a": ' * 6 + "1" + "}" * 6),
    "NaN": _ticket_body(risk_assessment='{"score": NaN}'),
    "Infinity": _ticket_body(risk_assessment='{"score": -Infinity}'),
    "1e400": _ticket_body(risk_assessment='{"score": 1e400}'),
    "integer over 64 bits": _ticket_body(risk_assessment='{"score": 18446744073709551616}'),
    "5,000-digit integer": _ticket_body(risk_assessment='{"score": ' + "9" * 5000 + "}"),
    "too many keys": _ticket_body(risk_assessment=json.dumps({f"k{i}": i for i in range(200)})),
    "top-level array": '[{"title": "x", "environment": "dev"}]',
    "top-level string": '"title"',
    "top-level null": "null",
    "not UTF-8": b'{"title": "\xff\xfe", "environment": "dev"}',
    "truncated": '{"title": "x", ',
    "title of 201 characters": json.dumps({"title": "t" * 201, "environment": "dev"}),
    "description of 20,001 characters": _ticket_body(description=json.dumps("d" * 20_001)),
    "commit_sha not hex": _ticket_body(commit_sha='"zz"'),
}


def _post_raw(user: User, path: str, body: str | bytes) -> Any:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return api_for(user).generic("POST", path, data, content_type="application/json")


def _reads_still_work(user: User, ticket: Ticket | None = None) -> None:
    client = api_for(user)
    listed = client.get("/api/v1/tickets/")
    assert listed.status_code == 200, listed.content[:300]
    for row in listed.json()["results"]:
        detail = client.get(f"/api/v1/tickets/{row['id']}/")
        assert detail.status_code == 200, detail.content[:300]
    if ticket is not None:
        assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200


def _refused(response: Any, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (400,)), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("body", HOSTILE_TICKET_BODIES.values(), ids=HOSTILE_TICKET_BODIES.keys())
def test_hostile_ticket_body_is_400_writes_nothing_and_reads_keep_working(
    author: User, infra_repo: Path, body: str | bytes
) -> None:
    _refused(_post_raw(author, "/api/v1/tickets/", body))
    assert not Ticket.objects.exists() and not AuditEvent.objects.exists()
    _reads_still_work(author)


def test_field_errors_name_the_field(author: User, infra_repo: Path) -> None:
    body = _refused(_post_raw(author, "/api/v1/tickets/", HOSTILE_TICKET_BODIES["NaN"]))
    assert "NaN" in body["detail"]
    too_deep = _post_raw(author, "/api/v1/tickets/", HOSTILE_TICKET_BODIES["object nested 6 deep"])
    assert "risk_assessment" in _refused(too_deep)
    long = _refused(
        _post_raw(
            author, "/api/v1/tickets/", HOSTILE_TICKET_BODIES["description of 20,001 characters"]
        )
    )
    assert "description" in long and "20000" in long["detail"]


def test_a_2_mb_description_is_400_naming_the_field(author: User, infra_repo: Path) -> None:
    body = json.dumps({"title": "big", "environment": "dev", "description": "x" * 2_000_000})
    refused = _refused(_post_raw(author, "/api/v1/tickets/", body))
    assert "description" in refused and "description" in refused["detail"]
    assert not Ticket.objects.exists()


def test_a_6_mb_body_is_413_with_a_json_detail(author: User, infra_repo: Path) -> None:
    body = json.dumps({"title": "big", "environment": "dev", "description": "x" * 6_000_000})
    refused = _refused(_post_raw(author, "/api/v1/tickets/", body), 413)
    assert "too large" in refused["detail"]
    assert not Ticket.objects.exists()


def test_a_6_mb_form_field_under_the_api_is_413_json(author: User, infra_repo: Path) -> None:
    # Django itself refuses form fields over DATA_UPLOAD_MAX_MEMORY_SIZE (files are apart);
    # the checks verb reads forms (a log_file upload).
    ticket = TicketFactory(author=author)
    response = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/checks/",
        {"name": "fmt", "status": "passed", "summary": "x" * 6_000_000},
        format="multipart",
    )
    _refused(response, 413)
    assert not ticket.checks.exists()


def test_a_form_where_json_is_read_is_415_naming_json(author: User, infra_repo: Path) -> None:
    """A form post would lose nested objects (risk_assessment): refused, not half-read."""
    response = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "form", "environment": "dev", "description": "sent as a form"},
        format="multipart",
    )
    refused = _refused(response, 415)
    assert refused["detail"].startswith("unsupported media type multipart/form-data")
    assert refused["detail"].endswith("send application/json")
    assert not Ticket.objects.exists()


def _awaiting(env: str, author: User) -> Ticket:
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
    )
    ticket.current_plan = RunFactory(
        ticket=ticket, plan_sha256=hashlib.sha256(b"plan-%d" % ticket.pk).hexdigest()
    )
    ticket.save()
    return ticket


VERB_BODIES = {
    "surrogate in reason": '{"reason": "\\udfff"}',
    "NUL in reason": '{"reason": "a\\u0000b"}',
    "surrogate in comment": '{"comment": "\\udfff", "plan_sha256": "%s"}',
    "NUL in comment": '{"comment": "\\u0000", "plan_sha256": "%s"}',
    "NUL in plan_sha256": '{"plan_sha256": "\\u0000"}',
    "nested 5,000 deep": '{"reason": ' + "[" * DEEP + "]" * DEEP + "}",
    "top-level array": '["reason"]',
    "reason of 2,001 characters": json.dumps({"reason": "r" * 2001}),
    "comment of 2,001 characters": '{"comment": "' + "c" * 2001 + '", "plan_sha256": "%s"}',
    "unknown extra nesting": '{"reason": "x", "extra": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
}


@pytest.mark.parametrize("verb", ["approve", "reject", "cancel", "plan"])
@pytest.mark.parametrize("body", VERB_BODIES.values(), ids=VERB_BODIES.keys())
def test_hostile_verb_body_is_4xx_changes_nothing_and_reads_keep_working(
    author: User, lead: User, infra_repo: Path, verb: str, body: str
) -> None:
    ticket = _awaiting("staging", author)
    actor = author if verb in {"cancel", "plan"} else lead
    assert ticket.current_plan is not None
    text = body.replace("%s", ticket.current_plan.plan_sha256)
    before = AuditEvent.objects.count()
    response = _post_raw(actor, f"/api/v1/tickets/{ticket.pk}/{verb}/", text)
    if response.status_code != 400:
        # A body whose only fault is a field this verb does not read is ignored; the
        # verb then answers as it would have (its rules refuse or it proceeds).
        assert body in (VERB_BODIES["reason of 2,001 characters"],) or response.status_code < 500
        return
    _refused(response)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert AuditEvent.objects.count() == before
    assert not Approval.objects.exists() and not Rejection.objects.exists()
    _reads_still_work(author, ticket)
    _reads_still_work(lead, ticket)


@pytest.mark.parametrize(
    "query",
    [
        "limit=9223372036854775808",
        "limit=-1",
        "limit=0",
        "limit=abc",
        "limit=1_000",
        "limit=201",
        "offset=-5",
        "offset=9223372036854775808",
        "offset=x",
    ],
)
def test_bad_page_parameters_are_400(author: User, query: str) -> None:
    TicketFactory(author=author)
    body = _refused(api_for(author).get(f"/api/v1/tickets/?{query}"))
    name = query.split("=")[0]
    assert name in body and name in body["detail"]


def test_page_size_is_bounded_and_documented(author: User) -> None:
    TicketFactory.create_batch(3, author=author)
    page = api_for(author).get("/api/v1/tickets/?limit=200&offset=1")
    assert page.status_code == 200 and page.json()["count"] == 3
    assert len(page.json()["results"]) == 2
    schema = api_for(author).get("/api/v1/schema/?format=json").json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/tickets/"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}


def test_unhandled_error_under_the_api_is_json_500_with_a_request_id(
    author: User, monkeypatch: Any, caplog: Any
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr("deployments.selectors.ticket_list", boom)
    response = api_for(author).get("/api/v1/tickets/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"] == "internal error" and len(body["request_id"]) == 32
    assert "database on fire" not in response.content.decode()
    assert body["request_id"] in caplog.text and "database on fire" in caplog.text


def test_django_level_500_under_the_api_is_json_and_pages_keep_html() -> None:
    from deployments.api.support.exceptions import handler500

    factory = RequestFactory()
    api = handler500(factory.get("/api/v1/tickets/"))
    assert api.status_code == 500 and json.loads(api.content)["detail"] == "internal error"
    page = handler500(factory.get("/tickets/"))
    assert page.status_code == 500 and b"<h1>" in page.content


@pytest.mark.parametrize(
    "path", ["/api/v1/nope/", "/api/v1/tickets/abc/", "/api/v1/runs/1.5/", "/api/nothing"]
)
def test_unknown_urls_under_the_api_are_json_404(author: User, path: str) -> None:
    client = Client()
    client.force_login(author)
    _refused(client.get(path), 404)


def test_out_of_range_ids_are_404(author: User) -> None:
    client = api_for(author)
    _refused(client.get("/api/v1/tickets/99999999999999999999/"), 404)
    _refused(client.get("/api/v1/runs/9223372036854775808/"), 404)
    _refused(client.post("/api/v1/tickets/99999999999999999999/cancel/", {}, format="json"), 404)


# --- pages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "field", "value"),
    [
        ("reject", "reason", "bad\x00reason"),
        ("reject", "reason", "r" * 2001),
        ("cancel", "reason", "x\x00"),
        ("cancel", "reason", "r" * 2001),
        ("approve", "comment", "ok\x00"),
        ("approve", "comment", "c" * 2001),
    ],
)
def test_page_post_with_hostile_text_answers_a_message_and_writes_nothing(
    author: User, lead: User, verb: str, field: str, value: str
) -> None:
    ticket = _awaiting("staging", author)
    assert ticket.current_plan is not None
    client = Client()
    client.force_login(author if verb == "cancel" else lead)
    before = AuditEvent.objects.count()
    response = client.post(
        f"/tickets/{ticket.pk}/{verb}/",
        {field: value, "plan_sha256": ticket.current_plan.plan_sha256},
        follow=True,
    )
    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    assert field in shown
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert AuditEvent.objects.count() == before
    assert not Approval.objects.exists() and not Rejection.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "a\x00b"),
        ("description", "d" * 20_001),
        ("description", "nul\x00"),
        ("risk_summary", "r" * 2_001),
    ],
)
def test_ticket_form_refuses_hostile_text_with_a_form_error(
    author: User, infra_repo: Path, field: str, value: str
) -> None:
    client = Client()
    client.force_login(author)
    data = {"title": "Scale", "environment": "dev", "change_type": "normal", field: value}
    response = client.post("/tickets/new/", data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Ticket.objects.exists()


# --- random JSON ------------------------------------------------------------------

_NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\udfff", "\ud800x", "a\x00b", "\x00", "\ufeff", "\u202e", "", " "]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _NASTY_TEXT,
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_NASTY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [
    "title",
    "environment",
    "description",
    "commit_sha",
    "change_type",
    "pull_request_url",
    "risk_assessment",
    "rollback_plan",
    "scheduled_for",
]
_BODIES = st.one_of(
    st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6).map(
        lambda d: json.dumps({"title": "t", "environment": "dev", **d})
    ),
    _JSON.map(json.dumps),
    st.integers(min_value=1, max_value=3000).map(lambda n: '{"title": ' + "[" * n + "]" * n + "}"),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_BODIES)
def test_random_json_never_gets_a_5xx_and_the_list_stays_readable(
    author: User, infra_repo: Path, body: str
) -> None:
    response = api_for(author).generic(
        "POST",
        "/api/v1/tickets/",
        body.encode("utf-8", "surrogatepass"),
        content_type="application/json",
    )
    assert response.status_code < 500, (body[:200], response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    _reads_still_work(author)


@pytest.mark.parametrize("offset", ["99999999999999999999999", "-1", "1e3", "٣"])
def test_live_log_offset_out_of_range_is_400_or_clamped_never_500(
    author: User, offset: str
) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.PLANNING)
    run = RunFactory(ticket=ticket, status="running")
    client = Client()
    client.force_login(author)
    response = client.get(f"/runs/{run.pk}/log/", {"offset": offset})
    assert response.status_code in (200, 400), response.content[:200]
    assert response["Content-Type"] == "application/json"


# --- the admin's environment form -------------------------------------------------


def _environment_admin_post(env: Environment) -> dict[str, str]:
    """The change form as the admin page submits it for an unchanged environment."""
    from deployments.admin import EnvironmentForm

    data: dict[str, str] = {}
    for name in EnvironmentForm._meta.fields or []:
        value = getattr(env, name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, dict | list):
            data[name] = json.dumps(value)
        elif value is not None:
            data[name] = str(value)
    return data


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("alarm_names", '["\\udfff"]'),
        ("alarm_names", '["a\\u0000b"]'),
        ("health_checks", "[" * DEEP + "]" * DEEP),
        ("alarm_names", "[" + "[" * 40 + "]" * 40 + "]"),
        ("required_checks", '["ci", 1e400]'),
    ],
    ids=["lone surrogate", "NUL", "nested 5,000 deep", "nested 40 deep", "1e400"],
)
def test_the_admins_environment_form_refuses_hostile_json_and_changes_nothing(
    admin_client: Any, author: User, field: str, raw: str
) -> None:
    staging = Environment.objects.get(name="staging")
    before = {name: getattr(staging, name) for name in ("alarm_names", "health_checks")}
    url = f"/admin/deployments/environment/{staging.pk}/change/"
    unchanged = admin_client.post(url, _environment_admin_post(staging))
    assert unchanged.status_code == 302  # the form as submitted is valid
    data = _environment_admin_post(staging)
    data[field] = raw
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    staging.refresh_from_db()
    assert {name: getattr(staging, name) for name in before} == before
    _reads_still_work(author)
