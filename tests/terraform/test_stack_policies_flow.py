"""A stack's own policy folder with the real Terraform (issues 20 and 21): the application
stack's `stacks/app/policies` is evaluated on its plans on top of the environment's folder
and blocks one that creates the network layer's resources, while the network stack, which
creates such resources itself, is not affected; a stack folder missing at the commit fails
closed naming itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import PolicyResult, Ticket
from deployments.services.stacks import StackInput, stack_save
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev
from tests.helpers.stacks import sample_stacks

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

EXTRA_SUBNET = """
# A subnet of the application's own: the network layer's to make.
resource "null_resource" "extra_subnet" {
  triggers = {
    name       = "media-${var.environment}-app-subnet"
    cidr_block = "10.0.50.0/24"
  }
}
"""


def _results(ticket: Ticket) -> dict[str, PolicyResult]:
    return {r.policy: r for r in PolicyResult.objects.filter(run=ticket.current_plan)}


def test_a_stack_s_own_policy_blocks_its_plan_and_not_the_other_stack_s(
    author: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    _network, app = sample_stacks(devops_lead)
    assert app.policy_dir == "stacks/app/policies"
    # The application layer as shipped passes its own policy and the environment's.
    first = drain(file_dev(author, stack="app", title="App as shipped"))
    assert first.status == TicketStatus.COMPLETED, first.status_reason
    results = _results(first)
    assert results["stacks/app/policies/app_layer"].outcome == "pass"
    assert results["stacks/app/policies/app_layer"].folder == "stacks/app/policies"
    assert results["tags"].folder == "policies" and results["tags"].outcome == "pass"

    main_tf = infra_repo / "stacks" / "app" / "main.tf"
    main_tf.write_text(main_tf.read_text() + EXTRA_SUBNET)
    commit_all(infra_repo, "app: a subnet of its own")

    # The network stack creates VPCs and subnets (cidr_block stand-ins) itself: the
    # application stack's policy is not its, so it deploys.
    network_ticket = drain(file_dev(author, stack="network", title="Network change"))
    assert network_ticket.status == TicketStatus.COMPLETED, network_ticket.status_reason
    network_results = _results(network_ticket)
    assert set(network_results) == {"tags", "instance_sizes", "public_s3"}
    assert {r.folder for r in network_results.values()} == {"policies"}

    # Its deployment planned the application layer at the new commit: blocked by its own
    # policy, named by its folder, the environment's policies evaluated all the same.
    triggered = drain(Ticket.objects.get(stack=app, triggered_by__isnull=False))
    assert triggered.status == TicketStatus.APPROVED, triggered.status_reason
    message = (
        "null_resource.extra_subnet would create a VPC or subnet (its cidr_block): the "
        "network layer owns it; change it on the network stack"
    )
    assert "not deployed by itself" in triggered.status_reason
    assert message in triggered.status_reason
    results = _results(triggered)
    blocked = results["stacks/app/policies/app_layer"]
    assert (blocked.level, blocked.outcome, blocked.messages) == ("hard", "fail", [message])
    assert blocked.path == "stacks/app/policies/app_layer.rego"
    assert blocked.folder == "stacks/app/policies" and blocked.source == "repo"
    assert {p: r.outcome for p, r in results.items() if r.folder == "policies"} == {
        "tags": "pass",
        "instance_sizes": "pass",
        "public_s3": "pass",
    }
    body = api_for(author).get(f"/api/v1/tickets/{triggered.pk}/").json()
    assert body["policy_status"] == "blocked"
    shown = next(r for r in body["policies"]["results"] if r["outcome"] == "fail")
    assert shown["policy"] == "stacks/app/policies/app_layer"
    assert shown["folder"] == "stacks/app/policies"
    refused = api_for(author).post(f"/api/v1/tickets/{triggered.pk}/deploy/")
    assert refused.status_code == 409
    assert "policy stacks/app/policies/app_layer (repo, hard) failed" in refused.json()["detail"]
    # The dry run reads the same folders.
    dry = api_for(author).post(
        "/api/v1/policies/evaluate/", {"run": triggered.current_plan_id}, format="json"
    )
    assert dry.status_code == 200 and dry.json()["status"] == "blocked"
    assert {(r["policy"], r["folder"]) for r in dry.json()["results"]} == {
        (p, r.folder) for p, r in results.items()
    }


def test_a_stack_folder_missing_at_the_commit_fails_closed(
    author: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    stack_save(
        actor=devops_lead,
        data=StackInput(
            name="network",
            root_dir="stacks/network",
            var_file_pattern="environments/<env>/terraform.tfvars",
            policy_dir="stacks/network/policies",
        ),
    )
    ticket = drain(file_dev(author, stack="network"))
    assert ticket.status == TicketStatus.APPROVED, ticket.status_reason
    results = _results(ticket)
    missing = results["stacks/network/policies/(policy folder)"]
    assert (missing.level, missing.outcome) == ("hard", "error")
    assert missing.messages == ["stacks/network/policies: no such folder at this commit"]
    assert results["tags"].outcome == "pass"  # the environment's folder still evaluated
    assert "stacks/network/policies: no such folder at this commit" in ticket.status_reason
