"""The whole prod story on the real Terraform binary: file, refusals, approve, re-plan
voids, approve again, deploy inside the window, apply exactly the approved plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Approval, Ticket
from tests.helpers.api import api_for
from tests.helpers.evidence import validate_in_staging
from tests.helpers.factories import RISK_OK, ROLLBACK_OK
from tests.helpers.flow import drain

pytestmark = [
    pytest.mark.terraform,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("evidence_dir"),
]

TUESDAY_0230_NEW_YORK = "2026-11-24 07:30:00+00:00"


def test_prod_ticket_from_filing_to_apply(
    author: User,
    developer: User,
    lead: User,
    qa: User,
    operations: User,
    tech_lead: User,
    devops_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": "Scale prod app servers",
            "environment": "prod",
            "description": "four app servers for the campaign",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    first_plan = ticket.current_plan
    assert first_plan is not None and first_plan.summary["add"] == 39

    def approve(user: User) -> Any:
        reviewed = Ticket.objects.get(pk=ticket.pk).current_plan.plan_sha256
        return api_for(user).post(
            f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
        )

    for user in (author, operations):
        refused = approve(user)
        assert refused.status_code == 403, (user.username, refused.json())
    for user in (developer, lead, qa):  # prod is not theirs to see (SPEC §2)
        assert approve(user).status_code == 404, user.username
    # The promotion gate: the commit must first be validated by QA in staging.
    gated = approve(tech_lead)
    assert gated.status_code == 409 and "validated in staging first" in gated.json()["detail"]
    validate_in_staging(ticket.commit_sha, qa=qa)
    assert approve(tech_lead).json()["status"] == "awaiting_approval"

    # A new plan voids tess's approval.
    replan = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/plan/", {"reason": "rebased on main"}, format="json"
    )
    assert replan.status_code == 202, replan.json()
    ticket = drain(ticket)
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    second_plan = ticket.current_plan
    assert second_plan is not None and second_plan.pk != first_plan.pk
    assert Approval.objects.get(approver=tech_lead).is_void

    assert approve(devops_lead).json()["status"] == "awaiting_approval"
    assert approve(tech_lead).json()["status"] == "approved"

    with time_machine.travel(TUESDAY_0230_NEW_YORK, tick=True):
        deployed = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
        assert deployed.status_code == 202, deployed.json()
        ticket = drain(ticket)  # the worker re-checks the window when the apply starts
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED and apply.plan_id == second_plan.pk
    assert f"Applying plan sha256 {second_plan.plan_sha256}" in apply.log
    assert "Apply complete! Resources: 39 added" in apply.log
    assert ticket.status == TicketStatus.MONITORING


def test_a_prod_ticket_is_promoted_from_a_qa_validated_staging_apply(
    author: User,
    lead: User,
    qa: User,
    tech_lead: User,
    devops_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    """The issue's "done when", as the people would do it: the developer is told what a prod
    ticket needs; the same commit is approved, really applied and signed off by QA in staging
    (smoke tests, a screenshot, the QA report); the leads then see that evidence, the scored
    risk and the rollback plan above their approve button, and may approve."""
    from django.test import Client

    from tests.helpers.evidence import PNG, upload

    bare = api_for(author).post(
        "/api/v1/tickets/", {"title": "Scale prod", "environment": "prod"}, format="json"
    )
    assert bare.status_code == 400
    assert bare.json()["detail"].startswith(
        "description: prod tickets need description, risk_assessment, rollback_plan"
    )
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": "Scale prod app servers",
            "environment": "prod",
            "description": "four app servers for the campaign",
            "pull_request_url": "https://git.example.com/infra/pull/7",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    prod = drain(Ticket.objects.get(pk=filed.json()["id"]))
    assert prod.status == TicketStatus.AWAITING_APPROVAL, prod.status_reason

    def approve(user: User, ticket: Ticket) -> Any:
        reviewed = Ticket.objects.get(pk=ticket.pk).current_plan.plan_sha256
        return api_for(user).post(
            f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
        )

    refused = approve(tech_lead, prod)
    assert refused.status_code == 409
    assert "no staging ticket of this commit exists" in refused.json()["detail"]

    # Staging, same commit: approved by a lead, applied for real, then QA's turn.
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "Scale staging", "environment": "staging", "commit_sha": prod.commit_sha},
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    staging = drain(Ticket.objects.get(pk=filed.json()["id"]))
    assert approve(lead, staging).json()["status"] == "approved"
    deployed = api_for(author).post(f"/api/v1/tickets/{staging.pk}/deploy/")
    assert deployed.status_code == 202, deployed.json()
    staging = drain(staging)
    assert staging.status == TicketStatus.MONITORING, staging.status_reason

    refused = approve(tech_lead, prod)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"staging ticket #{staging.pk} (/tickets/{staging.pk}/) is monitoring" in detail
    assert "it still needs passed smoke_tests and passed qa_report" in detail

    assert upload(qa, staging, name="smoke-run.txt", passed=True).status_code == 201
    shot = upload(qa, staging, PNG, name="player.png", kind="screenshot", passed=True)
    assert shot.status_code == 201
    assert Ticket.objects.get(pk=staging.pk).status == TicketStatus.MONITORING
    assert "still needs passed qa_report" in approve(tech_lead, prod).json()["detail"]
    report = upload(qa, staging, name="qa-report.txt", kind="qa_report", passed=True)
    assert report.status_code == 201
    assert Ticket.objects.get(pk=staging.pk).status == TicketStatus.COMPLETED

    linked = api_for(devops_lead).get(f"/api/v1/tickets/{prod.pk}/").json()
    assert linked["staging_ticket"]["id"] == staging.pk
    assert linked["staging_ticket"]["validated"] is True
    assert [e["filename"] for e in linked["staging_ticket"]["evidence"]] == [
        "smoke-run.txt",
        "player.png",
        "qa-report.txt",
    ]
    assert linked["risk_assessment"]["plan_run"] == prod.current_plan_id
    assert linked["risk_assessment"]["reasons"][0] == (
        f"{linked['risk_assessment']['level']}: score {linked['risk_assessment']['score']}"
    )
    for user in (tech_lead, devops_lead):
        client = Client()
        client.force_login(user)
        html = client.get(f"/tickets/{prod.pk}/").content.decode()
        approve_at = html.index('id="approve-form"')
        for shown in (
            'id="staging-validated"',
            "smoke-run.txt",
            "player.png",
            "qa-report.txt",
            'id="risk-reasons"',
            "the plan touches network, compute, database",
            str(ROLLBACK_OK["steps"]),
            "four app servers for the campaign",
        ):
            assert 0 <= html.find(shown) < approve_at, (user.username, shown)

    assert approve(tech_lead, prod).json()["status"] == "awaiting_approval"
    assert approve(devops_lead, prod).json()["status"] == "approved"
