"""An import, a move and a forget planned and applied by the real Terraform through the
portal (issue 18): the ticket page and the API show them, the risk counts them, and the
apply does what the plan said."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import RunKind, TicketStatus
from deployments.models import Environment
from deployments.services.environments import environment_save
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

BEFORE = """
resource "terraform_data" "legacy" {
  input = "legacy"
}
resource "terraform_data" "old_name" {
  input = "kept"
}
"""
AFTER = """
removed {
  from = terraform_data.legacy
  lifecycle {
    destroy = false
  }
}
resource "terraform_data" "new_name" {
  input = "kept"
}
moved {
  from = terraform_data.old_name
  to   = terraform_data.new_name
}
import {
  to = terraform_data.adopted
  id = "adopted-object"
}
resource "terraform_data" "adopted" {}
"""


def test_an_import_move_and_forget_show_score_and_apply(
    author: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    dev = Environment.objects.get(name="dev")
    dev.data_resource_types = [{"address": "terraform_data.legacy", "why": "the legacy ledger"}]
    environment_save(actor="admin", env=dev, changed=["data_resource_types"])
    (infra_repo / "terraform/state_changes.tf").write_text(BEFORE)
    first = drain(file_dev(author, commit_sha=commit_all(infra_repo, "two resources")))
    assert first.status == TicketStatus.COMPLETED, first.status_reason

    (infra_repo / "terraform/state_changes.tf").write_text(AFTER)
    ticket = drain(file_dev(author, commit_sha=commit_all(infra_repo, "import, move, forget")))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    plan = ticket.runs.get(kind=RunKind.PLAN)
    apply = ticket.runs.get(kind=RunKind.APPLY)
    # Terraform's own count, and the portal's, which adds what Terraform leaves out.
    assert "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy." in plan.log
    assert (
        "Plan saved: 1 to import, 0 to add, 0 to change, 0 to destroy, 1 to move, 1 to forget"
        in plan.log
    )
    assert "Apply complete! Resources: 1 imported, 0 added, 0 changed, 0 destroyed." in apply.log
    assert plan.has_changes is True

    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    summary = body["plan_summary"]
    assert (summary["add"], summary["change"], summary["destroy"]) == (0, 0, 0)
    assert (summary["import_count"], summary["move_count"], summary["forget_count"]) == (1, 1, 1)
    listed = {r["address"]: r for r in summary["resources"]}
    assert listed["terraform_data.adopted"]["importing"] is True
    assert listed["terraform_data.new_name"]["previous_address"] == "terraform_data.old_name"
    assert listed["terraform_data.legacy"]["action"] == "forget"
    risk = body["risk_assessment"]
    assert risk["level"] == "medium"
    assert risk["reasons"][0] == (
        "medium: forgets terraform_data.legacy (other), which stays but is no longer managed: "
        "the legacy ledger"
    )
    assert risk["blast_radius"]["components"] == ["other"]

    client = Client()
    client.force_login(author)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    for needle in (
        '<span class="import">1 to import</span>',
        '<span class="move">1 to move</span>',
        '<span class="forget">1 to forget</span>',
        "<code>terraform_data.new_name</code> <small>moved from "
        "<code>terraform_data.old_name</code>",
        'id="blast-state">State only: imports 1, moves 1, forgets 1 resource(s).',
    ):
        assert needle in html, needle
    assert "Touches: nothing" not in html
