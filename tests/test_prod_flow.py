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

from .conftest import api_for
from .evidence_helpers import evidence_dir, validate_in_staging
from .factories import RISK_OK, ROLLBACK_OK
from .test_terraform_flow import drain, inline  # noqa: F401 - fixture

__all__ = ["evidence_dir"]

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
    inline: list[int],  # noqa: F811
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
