"""The OpenAPI document is the contract: complete, warning-free, and what the API answers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.keys import new_key
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema_doc(author: User) -> dict[str, Any]:
    response = api_for(author).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"][name]
    return found


def _text(prop: dict[str, Any]) -> dict[str, Any]:
    """A string property; one that may also be blank is anyOf [constraints, empty]."""
    if "anyOf" in prop:
        assert prop["anyOf"][1] == {"type": "string", "maxLength": 0}
        found: dict[str, Any] = prop["anyOf"][0]
        return found
    return prop


def test_schema_generates_without_warnings(tmp_path: Any) -> None:
    # The same generation `manage.py check --deploy` runs; any warning fails it.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))


def test_fields_that_can_be_null_are_declared_nullable(schema_doc: dict[str, Any]) -> None:
    ticket = _component(schema_doc, "Ticket")["properties"]
    assert ticket["current_plan"].get("nullable") is True
    brief = _component(schema_doc, "RunBrief")["properties"]
    assert brief["requested_by"].get("nullable") is True
    assert _component(schema_doc, "Run")["properties"]["requested_by"].get("nullable") is True


def test_request_constraints_are_stated(schema_doc: dict[str, Any]) -> None:
    create = _component(schema_doc, "TicketCreateRequest")
    props = create["properties"]
    assert set(create["required"]) == {"title", "environment"}
    assert props["title"]["minLength"] == 1 and props["title"]["maxLength"] == 200
    assert _text(props["description"])["maxLength"] == 20_000
    assert _text(props["commit_sha"])["pattern"] == "^[0-9a-fA-F]{40}$"
    risk = _component(schema_doc, "RiskAssessmentRequest")
    assert set(risk["required"]) == {"impact", "likelihood", "summary"}
    assert risk["properties"]["summary"]["maxLength"] == 2_000
    assert props["change_type"]["allOf"] == [{"$ref": "#/components/schemas/ChangeTypeEnum"}]
    approve = _component(schema_doc, "ApproveRequest")
    assert approve["required"] == ["plan_sha256"]
    assert approve["properties"]["plan_sha256"]["pattern"] == "^[0-9a-fA-F]{64}$"
    assert _text(approve["properties"]["comment"])["maxLength"] == 2000
    reject = _component(schema_doc, "RejectRequest")
    assert reject["properties"]["reason"]["minLength"] == 1
    plan = _component(schema_doc, "PlanRequest")
    assert "reason" in plan["properties"] and "required" not in plan
    statuses = _component(schema_doc, "TicketStatusEnum")["enum"]
    assert statuses == TicketStatus.values


def test_the_risk_questionnaire_rollback_plan_and_promotion_are_documented(
    schema_doc: dict[str, Any],
) -> None:
    """What a prod ticket needs, field by field, as the API checks it (deployments.policy.risk)."""
    from deployments.policy import risk

    level = {"$ref": "#/components/schemas/RiskLevelEnum"}
    assert _component(schema_doc, "RiskLevelEnum")["enum"] == list(risk.LEVELS)
    questionnaire = _component(schema_doc, "RiskAssessmentRequest")
    assert questionnaire["additionalProperties"] is False
    assert set(questionnaire["properties"]) == set(risk.RISK_FIELDS)
    props = questionnaire["properties"]
    assert props["impact"] == level and props["likelihood"] == level
    for question in risk.QUESTIONS:
        assert props[question] == {"type": "boolean", "default": False}
    rollback = _component(schema_doc, "RollbackPlanRequest")
    assert rollback["additionalProperties"] is False and rollback["required"] == ["steps"]
    assert set(rollback["properties"]) == set(risk.ROLLBACK_FIELDS)
    minutes = rollback["properties"]["expected_minutes"]
    assert (minutes["minimum"], minutes["maximum"]) == (0, risk.EXPECTED_MINUTES_MAX)
    assert _text(rollback["properties"]["steps"])["maxLength"] == risk.STEPS_MAX
    # The answers: the scoring with its reasons, the rollback plan's last known good and
    # the staging ticket a prod ticket is promoted from.
    scored = _component(schema_doc, "RiskOut")["properties"]
    assert {"score", "level", "reasons", "blast_radius", "plan_run"} <= set(scored)
    assert "last_known_good" in _component(schema_doc, "RollbackOut")["properties"]
    detail = _component(schema_doc, "TicketDetail")["properties"]
    assert detail["staging_ticket"]["allOf"] == [{"$ref": "#/components/schemas/StagingTicket"}]
    staging = _component(schema_doc, "StagingTicket")["properties"]
    assert {"id", "status", "commit_sha", "validated", "missing", "evidence"} <= set(staging)


def test_every_operation_documents_its_error_answers(schema_doc: dict[str, Any]) -> None:
    error = _component(schema_doc, "Error")
    assert error["required"] == ["detail"]
    for path, methods in schema_doc["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            expected = {"401", "403"}
            if method == "post":
                expected |= {"400", "409", "413"}
            if "{" in path:
                expected.add("404")
            assert expected <= codes, (method, path, codes)
            for code in expected:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}


def test_openapi_spec_validator_accepts_the_document(schema_doc: dict[str, Any]) -> None:
    """What a client generator's first step checks: every default matches its own schema."""
    from openapi_spec_validator import OpenAPIV30SpecValidator

    errors = [str(e).splitlines()[0] for e in OpenAPIV30SpecValidator(schema_doc).iter_errors()]
    assert errors == []


def test_a_blank_default_sits_beside_the_constraint_it_does_not_meet(
    schema_doc: dict[str, Any],
) -> None:
    """Blank-or-constrained text: the default "" belongs to the property, whose anyOf admits
    blank; the constraint itself stays as strict as the server's validator."""
    commit = _component(schema_doc, "TicketCreateRequest")["properties"]["commit_sha"]
    assert commit["default"] == ""
    assert commit["anyOf"] == [
        {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"},
        {"type": "string", "maxLength": 0},
    ]
    comment = _component(schema_doc, "ApproveRequest")["properties"]["comment"]
    assert comment["default"] == "" and "default" not in comment["anyOf"][0]
    assert comment["anyOf"][0]["pattern"] == "^[^\\u0000]+$"


def _normalised(name: str) -> str:
    # openapi-python-client turns component names into class names: case and punctuation go.
    return "".join(ch for ch in name if ch.isalnum()).lower()


def test_every_component_has_its_own_name(schema_doc: dict[str, Any]) -> None:
    """Two components that a generator names alike collapse into one (the metrics' `_Error`
    and `Error` did, and every error answer was dropped from the generated client)."""
    names = list(schema_doc["components"]["schemas"])
    assert not [n for n in names if not n[:1].isalpha()], names
    seen: dict[str, str] = {}
    for name in names:
        assert _normalised(name) not in seen, (name, seen.get(_normalised(name)))
        seen[_normalised(name)] = name


def test_json_is_the_request_body_and_multipart_only_where_a_file_goes(
    schema_doc: dict[str, Any],
) -> None:
    uploads = {"/api/v1/tickets/{id}/evidence/", "/api/v1/tickets/{id}/checks/"}
    for path, methods in schema_doc["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            media = set(body["content"])
            if path in uploads:
                assert "multipart/form-data" in media, path
            else:
                assert media == {"application/json"}, (method, path, media)
    evidence = schema_doc["paths"]["/api/v1/tickets/{id}/evidence/"]["post"]["requestBody"]
    assert set(evidence["content"]) == {"multipart/form-data"}
    form = _component(schema_doc, "EvidenceUploadRequest")
    # A form field is text: `passed` is true or false, or left out (no verdict yet); a form
    # cannot say null, so the document does not offer it.
    assert form["properties"]["passed"]["type"] == "boolean"
    assert not form["properties"]["passed"].get("nullable")
    assert form["properties"]["file"]["format"] == "binary"
    checks = schema_doc["paths"]["/api/v1/tickets/{id}/checks/"]["post"]["requestBody"]
    assert checks["content"]["multipart/form-data"]["schema"] == {
        "$ref": "#/components/schemas/CheckUploadRequest"
    }
    assert checks["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CheckCreateRequest"
    }


def test_bearer_and_token_are_both_in_the_security_schemes(schema_doc: dict[str, Any]) -> None:
    schemes = schema_doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["tokenAuth"]["in"] == "header" and schemes["tokenAuth"]["name"] == (
        "Authorization"
    )
    approve = schema_doc["paths"]["/api/v1/tickets/{id}/approve/"]["post"]
    assert {"bearerAuth": []} in approve["security"] and {"tokenAuth": []} in approve["security"]


_REF = "#/components/schemas/"


def _points_at(prop: dict[str, Any], component: str) -> bool:
    refs = [prop.get("$ref"), *(branch.get("$ref") for branch in prop.get("allOf", []))]
    items = prop.get("items") or {}
    refs.append(items.get("$ref"))
    return f"{_REF}{component}" in refs


@pytest.mark.parametrize(
    ("component", "field", "shape"),
    [
        ("Ticket", "plan_summary", "PlanSummary"),
        ("TicketDetail", "plan_summary", "PlanSummary"),
        ("TicketDetail", "approvals", "Approval"),
        ("TicketDetail", "approval_status", "ApprovalStatus"),
        ("TicketDetail", "rejections", "Rejection"),
        ("Run", "summary", "PlanSummary"),
        ("RunBrief", "summary", "PlanSummary"),
        ("DriftCheck", "summary", "PlanSummary"),
        ("Environment", "change_window", "ChangeWindow"),
        ("Environment", "approval_rule", "ApprovalRule"),
        ("Environment", "emergency_approval_rule", "ApprovalRule"),
    ],
)
def test_what_ci_reads_has_a_named_schema(
    schema_doc: dict[str, Any], component: str, field: str, shape: str
) -> None:
    prop = _component(schema_doc, component)["properties"][field]
    assert _points_at(prop, shape), prop
    assert _component(schema_doc, shape)["properties"]


def test_no_field_is_an_untyped_object(schema_doc: dict[str, Any]) -> None:
    """Every property says what it holds; a free-form object (audit data) says so."""
    for name, component in schema_doc["components"]["schemas"].items():
        for field, prop in (component.get("properties") or {}).items():
            typed = {"type", "$ref", "allOf", "anyOf", "oneOf"} & set(prop)
            assert typed, (name, field, prop)
            if prop.get("type") == "object" and "properties" not in prop:
                additional = prop.get("additionalProperties")
                assert additional is True or "$ref" in (additional or {}), (name, field, prop)


# --- schemathesis against the WSGI app ---------------------------------------------


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    # Called as a plain WSGI app, Django would close the test's database connection at the
    # end of each request; Django's own test client disconnects the same handlers.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # The same expectations as the CI run against the live server.
        config = SchemathesisConfig.from_path(str(ROOT / "scripts" / "schemathesis.toml"))
        # A handler made now, so its middleware reads the test settings (plain HTTP: a
        # handler made at import in production mode would redirect every call to HTTPS).
        application = WSGIHandler()
        yield schemathesis.openapi.from_wsgi(
            "/api/v1/schema/?format=json", application, config=config
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(author: User, lead: User, operations: User) -> dict[str, Any]:
    """A staging ticket waiting for approval with a plan, and a token per role."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=lead,
        status=TicketStatus.AWAITING_APPROVAL,
    )
    plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"plan").hexdigest())
    Ticket.objects.filter(pk=ticket.pk).update(current_plan=plan)
    return {
        "ticket": ticket.pk,
        "run": plan.pk,
        "tokens": [new_key(u) for u in (author, operations)],
    }


def test_api_answers_as_its_schema_says(api_schema: Any, seeded: dict[str, Any]) -> None:
    """A few generated cases per operation, as a developer and as operations, with
    schemathesis' checks (scripts/schemathesis.sh runs many more against a live server)."""
    tested = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=4,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            if "id" in (case.path_parameters or {}):
                case.path_parameters["id"] = seeded["run" if "/runs/" in case.path else "ticket"]
            for token in seeded["tokens"]:
                case.call_and_validate(headers={"Authorization": f"Token {token}"})

        check()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert "POST /api/v1/tickets/{id}/approve/" in tested and len(tested) >= 11
