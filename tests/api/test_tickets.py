"""The v1 ticket API: filing, reading, scope, and bad input that changes nothing."""

from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import TicketFactory

pytestmark = pytest.mark.django_db


def _file(user: User, **payload: Any) -> Any:
    body = {"title": "Scale app servers", "environment": "dev", **payload}
    return api_for(user).post("/api/v1/tickets/", body, format="json")


def test_filing_a_dev_ticket_records_the_tip_of_main_and_queues_a_plan(
    author: User, head_sha: str, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(
        "deployments.tasks.run_execute.apply_async", lambda args, **kw: sent.append(args[0])
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = _file(author, description="more capacity")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "planning"
    assert body["commit_sha"] == head_sha
    assert body["author"] == "alice" and body["environment"] == "dev"
    run = TerraformRun.objects.get(ticket_id=body["id"])
    assert run.kind == RunKind.PLAN and run.status == RunStatus.QUEUED
    assert sent == [run.pk]
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["ticket.create", "ticket.transition", "run.queue"]
    assert [r["id"] for r in body["runs"]] == [run.pk]


def test_filing_with_an_explicit_commit_keeps_it(author: User, head_sha: str) -> None:
    response = _file(author, commit_sha=head_sha.upper())
    assert response.status_code == 201
    assert response.json()["commit_sha"] == head_sha


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"environment": "qa"}, "environment", "unknown environment 'qa'"),
        ({"commit_sha": "main"}, "commit_sha", "40-character hex"),
        ({"commit_sha": "g" * 40}, "commit_sha", "40-character hex"),
        ({"commit_sha": "a" * 40}, "commit_sha", "must name a commit of the infrastructure"),
        ({"title": ""}, "title", "may not be blank"),
        ({"title": None}, "title", "may not be null"),
        ({"change_type": "yolo"}, "change_type", "not a valid choice"),
        ({"risk_assessment": "high"}, "risk_assessment", "dictionary"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    author: User, infra_repo: Path, payload: dict[str, Any], field: str, words: str
) -> None:
    response = _file(author, **payload)
    assert response.status_code == 400
    body = response.json()
    assert field in body and field in body["detail"]
    assert words in body["detail"]
    assert not Ticket.objects.exists() and not AuditEvent.objects.exists()


def test_missing_title_is_named(author: User, infra_repo: Path) -> None:
    response = api_for(author).post("/api/v1/tickets/", {"environment": "dev"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "title: This field is required."


def test_malformed_json_is_400_with_detail(author: User, infra_repo: Path) -> None:
    response = api_for(author).post(
        "/api/v1/tickets/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed request body")
    assert not Ticket.objects.exists()


def test_a_missing_infrastructure_repository_is_a_clear_400(author: User) -> None:
    response = _file(author)
    assert response.status_code == 400
    assert "does not exist" in response.json()["detail"]


def test_prod_ticket_needs_risk_assessment_and_rollback_plan(
    author: User, infra_repo: Path
) -> None:
    response = _file(author, environment="prod", description="x")
    assert response.status_code == 400  # missing input, not a refused person
    body = response.json()
    assert body["detail"].startswith(
        "risk_assessment: prod tickets need risk_assessment, rollback_plan"
    )
    assert "risk_assessment" in body
    assert not Ticket.objects.exists()


def test_a_role_without_filing_rights_is_refused(qa: User, infra_repo: Path) -> None:
    response = _file(qa, environment="dev")
    assert response.status_code == 403
    assert "you may not file dev tickets" in response.json()["detail"]


def test_unauthenticated_requests_are_401(infra_repo: Path) -> None:
    response = api_for(None).post(
        "/api/v1/tickets/", {"title": "x", "environment": "dev"}, format="json"
    )
    assert response.status_code == 401
    assert "detail" in response.json()


def test_token_from_create_api_token_authenticates(
    author: User, head_sha: str, capsys: Any
) -> None:
    call_command("create_api_token", "alice")
    key = capsys.readouterr().out.strip()
    assert key.startswith("ccp_") and len(key) > 40
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(
        "/api/v1/tickets/", {"title": "via CI", "environment": "dev"}, format="json"
    )
    assert response.status_code == 201
    assert client.get(f"/api/v1/tickets/{response.json()['id']}/").json()["title"] == "via CI"
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/tickets/").status_code == 401


def test_ticket_list_filters_by_environment_and_status(author: User) -> None:
    from deployments.models import Environment

    TicketFactory(author=author, status=TicketStatus.COMPLETED)
    TicketFactory(author=author, environment=Environment.objects.get(name="staging"))
    client = api_for(author)
    assert client.get("/api/v1/tickets/").json()["count"] == 2
    assert client.get("/api/v1/tickets/?environment=staging").json()["count"] == 1
    assert client.get("/api/v1/tickets/?status=completed").json()["count"] == 1
    bad = client.get("/api/v1/tickets/?status=done")
    assert bad.status_code == 400 and "unknown status" in bad.json()["detail"]


def test_objects_outside_the_callers_scope_are_404(author: User, outsider: User) -> None:
    ticket = TicketFactory(author=author)
    from tests.helpers.factories import RunFactory

    run = RunFactory(ticket=ticket)
    client = api_for(outsider)
    assert client.get("/api/v1/tickets/").json()["count"] == 0
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket.pk}/plan/").status_code == 404
    assert api_for(author).get(f"/api/v1/runs/{run.pk}/").status_code == 200


def test_replanning_while_a_run_is_active_is_409(author: User, infra_repo: Path) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.PLAN_FAILED)
    from tests.helpers.factories import RunFactory

    RunFactory(ticket=ticket, status=RunStatus.RUNNING)
    response = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/plan/")
    assert response.status_code == 409
    assert response.json()["detail"] == "a Terraform run for this ticket is already in progress"


def test_replanning_a_completed_ticket_is_409(author: User) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.COMPLETED)
    response = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/plan/")
    assert response.status_code == 409
    assert "completed cannot be re-planned" in response.json()["detail"]


def test_replan_answers_202_with_the_queued_run(author: User, infra_repo: Path) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.PLAN_FAILED)
    response = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/plan/")
    assert response.status_code == 202
    assert response.json()["kind"] == "plan" and response.json()["status"] == "queued"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PLANNING


def test_cancel_by_author_and_refusal_for_others(author: User, developer: User) -> None:
    ticket = TicketFactory(author=author)
    refused = api_for(developer).post(f"/api/v1/tickets/{ticket.pk}/cancel/", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "only the ticket's author or a lead can cancel it"
    done = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/cancel/", {"reason": "not needed"}, format="json"
    )
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    again = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/cancel/", {}, format="json")
    assert again.status_code == 409


@time_machine.travel("2026-11-24 07:30:00+00:00", tick=False)  # Tuesday 02:30 EST
def test_environments_report_policy_and_window(author: User) -> None:
    envs = {e["name"]: e for e in api_for(author).get("/api/v1/environments/").json()}
    assert set(envs) == {"dev", "staging", "prod"}
    prod = envs["prod"]
    assert prod["change_window"]["timezone"] == "America/New_York"
    assert prod["change_window"]["days"] == [2, 4]
    assert (prod["change_window"]["start"], prod["change_window"]["end"]) == ("02:00", "04:00")
    assert prod["in_window_now"] is True
    assert prod["next_window_start"] == "2026-11-24T02:00:00-05:00"
    assert prod["approval_rule"] == {"all_of": ["tech_lead", "devops_lead"]}
    assert envs["dev"]["change_window"] is None and envs["dev"]["in_window_now"] is True


@time_machine.travel("2026-11-24 09:30:00+00:00", tick=False)  # Tuesday 04:30 EST
def test_next_window_after_tuesdays_closes_is_thursday(author: User) -> None:
    prod = api_for(author).get("/api/v1/environments/prod/").json()
    assert prod["in_window_now"] is False
    assert prod["next_window_start"] == "2026-11-26T02:00:00-05:00"


def test_openapi_schema_is_served(author: User) -> None:
    response = api_for(author).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/tickets/",
        "/api/v1/tickets/{id}/",
        "/api/v1/tickets/{id}/plan/",
        "/api/v1/runs/{id}/",
        "/api/v1/environments/",
    ):
        assert path in paths
