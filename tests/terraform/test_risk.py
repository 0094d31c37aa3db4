"""The blast radius and the scored risk from real `terraform plan` runs of the sample stack,
recomputed on every new plan; the last known good deployment picked from real applies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Environment, Ticket
from deployments.policy import data_resources
from deployments.services.environments import environment_save
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK
from tests.helpers.flow import drain

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]


def _file(user: User, env: str, **extra: Any) -> Ticket:
    response = api_for(user).post(
        "/api/v1/tickets/",
        {"title": f"{env} change", "environment": env, "risk_assessment": RISK_OK, **extra},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return Ticket.objects.get(pk=response.json()["id"])


def _bigger_database(infra_repo: Path) -> str:
    path = infra_repo / "terraform/environments/staging/terraform.tfvars"
    text = path.read_text()
    changed = re.sub(
        r'db_instance_class\s*=\s*"[^"]+"', 'db_instance_class = "db.r6g.2xlarge"', text
    )
    assert changed != text
    path.write_text(changed)
    return commit_all(infra_repo, "staging: a bigger database")


def test_risk_follows_each_real_plan(
    author: User,
    tech_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    # The sample stack's stand-ins hold data as the resources they model (the local run
    # names them the same way: seed_demo).
    staging = Environment.objects.get(name="staging")
    staging.data_resource_types = data_resources.SAMPLE_STACK_EXTRA
    environment_save(actor="admin", env=staging, changed=["data_resource_types"])
    first = drain(_file(author, "staging"))
    assert first.status == TicketStatus.AWAITING_APPROVAL, first.status_reason
    resources = first.current_plan.summary["resources"]
    assert {"address", "type", "module", "action"} <= set(resources[0])
    db = next(r for r in resources if r["address"] == "module.database.null_resource.instance")
    assert db == {
        "address": "module.database.null_resource.instance",
        "type": "null_resource",
        "module": "module.database",
        "action": "create",
        "previous_address": "",
        "importing": False,
    }
    blast = first.risk["blast_radius"]
    assert blast["components"] == [
        "network",
        "compute",
        "database",
        "cache",
        "storage",
        "processing",
        "monitoring",
    ]
    assert blast["destructive"] is False
    assert first.risk["level"] == "medium" and first.risk["plan_run"] == first.current_plan_id

    # A second ticket changes the database class, planned before the first is deployed.
    second = drain(_file(author, "staging", commit_sha=_bigger_database(infra_repo)))
    assert second.risk["blast_radius"]["destructive"] is False  # nothing exists yet

    # The first is approved and deployed; the second's new plan now replaces the database.
    approved = api_for(tech_lead).post(
        f"/api/v1/tickets/{first.pk}/approve/",
        {"plan_sha256": first.current_plan.plan_sha256},
        format="json",
    )
    assert approved.status_code == 200, approved.json()
    deployed = api_for(author).post(f"/api/v1/tickets/{first.pk}/deploy/", {}, format="json")
    assert deployed.status_code in (200, 202), deployed.json()
    first = drain(first)
    assert first.status == TicketStatus.MONITORING, first.status_reason

    replanned = api_for(author).post(f"/api/v1/tickets/{second.pk}/plan/", {}, format="json")
    assert replanned.status_code in (200, 202), replanned.json()
    second = drain(second)
    assert second.status == TicketStatus.AWAITING_APPROVAL
    assert second.risk["level"] == "high"
    assert second.risk["reasons"][0] == (
        "high: replaces module.database.null_resource.instance (database): "
        "the sample stack's aws_db_instance: the PostgreSQL database"
    )
    assert second.risk["blast_radius"]["components"] == ["database"]
    levels = [
        (e.data["from_level"], e.data["level"])
        for e in AuditEvent.objects.filter(ticket=second, action="ticket.risk").order_by("id")
    ]
    assert levels == [("", "low"), ("low", "medium"), ("medium", "high")]
    body = api_for(tech_lead).get(f"/api/v1/tickets/{second.pk}/").json()
    assert body["risk_assessment"]["level"] == "high"
    assert body["rollback_plan"]["last_known_good"]["ticket"] == first.pk
    assert body["rollback_plan"]["last_known_good"]["commit_sha"] == first.commit_sha
