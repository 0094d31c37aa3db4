"""Rego policies on real plans of the sample stack, evaluated by regopy in the sandbox after
every plan: the shipped policies pass the stack as it is, an untagged resource blocks, a
replaced database waits for a DevOps Lead's override (voided by a re-plan), a broken or
endless policy fails closed naming itself."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Environment, PolicyCheck, PolicyResult, Ticket
from deployments.policy import data_resources
from deployments.services.environments import environment_save
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

UNTAGGED = """
# A new queue stand-in whose tags lack the owner and the cost center.
resource "null_resource" "untagged_queue" {
  triggers = {
    name = "media-extra-queue"
    tags = jsonencode({ Project = "media", Environment = "dev" })
  }
}
"""


def _outcomes(ticket: Ticket) -> dict[str, str]:
    return {r.policy: r.outcome for r in PolicyResult.objects.filter(run=ticket.current_plan)}


def test_the_sample_stack_passes_its_own_policies_and_deploys(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    # dev: the policies the manifest applies there, every one passing on the real plan.
    assert _outcomes(ticket) == {
        "tags": "pass",
        "instance_sizes": "pass",
        "public_s3": "pass",
    }
    check = PolicyCheck.objects.get(run=ticket.current_plan)
    assert check.status == "passed" and check.document_sha256
    # The stored input is the masked plan: the database password never in it.
    with check.document.open("rb") as handle:
        document = handle.read().decode()
    assert "dev-not-a-real-password" not in document
    assert "(sensitive value)" in document
    assert json.loads(document)["resource_changes"]
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "passed"
    assert {r["policy"] for r in body["policies"]["results"]} == {
        "tags",
        "instance_sizes",
        "public_s3",
    }
    run_body = api_for(author).get(f"/api/v1/runs/{ticket.current_plan_id}/").json()
    assert run_body["policy_status"] == "passed"
    tags = next(r for r in run_body["policy_results"] if r["policy"] == "tags")
    assert tags["source"] == "repo" and tags["level"] == "hard" and tags["outcome"] == "pass"
    assert len(tags["version_sha256"]) == 64
    event = AuditEvent.objects.filter(action="policy.evaluate", ticket=ticket).get()
    assert event.data["status"] == "passed"


def test_an_untagged_resource_is_blocked_with_the_policy_message(
    author: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    main_tf = infra_repo / "terraform" / "main.tf"
    main_tf.write_text(main_tf.read_text() + UNTAGGED)
    commit_all(infra_repo, "dev: an extra queue without cost tags")
    ticket = drain(file_dev(author))
    # dev needs no approval, but does not deploy by itself past a hard failure.
    assert ticket.status == TicketStatus.APPROVED, (ticket.status_reason, ticket.risk)
    assert "not deployed by itself" in ticket.status_reason
    assert "null_resource.untagged_queue lacks the tags costcenter, owner" in ticket.status_reason
    assert _outcomes(ticket)["tags"] == "fail"
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "blocked"
    assert "deploy" not in body["available_actions"]
    refused = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert refused.status_code == 409
    detail = refused.json()
    assert "policy tags (repo, hard) failed" in detail["detail"]
    assert detail["policies"][0]["policy"] == "tags"
    assert any("untagged_queue" in m for m in detail["policies"][0]["messages"])
    # A hard failure cannot be overridden, whoever asks.
    overridden = api_for(devops_lead).post(
        f"/api/v1/tickets/{ticket.pk}/policy-overrides/",
        {"policy": "tags", "plan_sha256": ticket.current_plan.plan_sha256, "reason": "later"},
        format="json",
    )
    assert overridden.status_code == 409
    assert "cannot be overridden" in overridden.json()["detail"]
    assert AuditEvent.objects.filter(action="policy.hold", ticket=ticket).exists()


def _dev_guards_data(infra_repo: Path) -> None:
    """The sample stack's data protection applies in dev too (its manifest), and dev names
    the stand-ins that hold data, so a dev plan can replace a database for real."""
    manifest_path = infra_repo / "policies" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["policies"]["data_protection"]["environments"] = ["dev", "prod"]
    manifest_path.write_text(json.dumps(manifest, indent=2))
    commit_all(infra_repo, "policies: guard dev's data too")
    dev = Environment.objects.get(name="dev")
    dev.data_resource_types = data_resources.SAMPLE_STACK_EXTRA
    environment_save(actor="admin", env=dev, changed=["data_resource_types"])


def _change_dev_database(infra_repo: Path) -> None:
    path = infra_repo / "terraform/environments/dev/terraform.tfvars"
    text = path.read_text()
    changed = re.sub(r'db_instance_class\s*=\s*"[^"]+"', 'db_instance_class = "db.t3.small"', text)
    assert changed != text
    path.write_text(changed)
    commit_all(infra_repo, "dev: a bigger (still small) database")


def test_replacing_a_database_waits_for_a_devops_leads_override_which_a_replan_voids(
    author: User,
    developer: User,
    devops_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    _dev_guards_data(infra_repo)
    first = drain(file_dev(author))
    assert first.status == TicketStatus.COMPLETED, first.status_reason
    assert _outcomes(first)["data_protection"] == "pass"  # everything is new: nothing lost

    _change_dev_database(infra_repo)
    ticket = drain(file_dev(author, title="Resize the dev database"))
    assert ticket.status == TicketStatus.APPROVED
    assert _outcomes(ticket)["data_protection"] == "fail"
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "override_needed"
    assert body["policies"]["override_needs"] == [
        {"policy": "data_protection", "role": "devops_lead", "role_label": "DevOps Lead"}
    ]
    result = next(r for r in body["policies"]["results"] if r["policy"] == "data_protection")
    assert result["level"] == "soft"
    assert result["messages"] == [
        "module.database.null_resource.instance (null_resource) would be replaced: it holds "
        "data the configuration cannot re-create"
    ]
    deploy = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert deploy.status_code == 409 and "needs a policy override" in deploy.json()["detail"]

    sha = ticket.current_plan.plan_sha256
    url = f"/api/v1/tickets/{ticket.pk}/policy-overrides/"

    def override(user: User, **extra: Any) -> Any:
        payload = {"policy": "data_protection", "plan_sha256": sha, "reason": "resize", **extra}
        return api_for(user).post(url, payload, format="json")

    assert override(author).status_code == 403  # never the author
    assert override(developer).status_code == 403  # not the role the policy names
    assert override(devops_lead, plan_sha256="0" * 64).status_code == 409
    assert override(devops_lead, reason="").status_code == 400
    done = override(devops_lead, reason="planned resize; snapshot taken")
    assert done.status_code == 201, done.json()
    assert done.json()["plan_sha256"] == sha and done.json()["overridden_by"] == "otto"
    assert override(devops_lead).status_code == 409  # once per plan
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "warnings"
    assert "deploy" in body["available_actions"]
    event = AuditEvent.objects.filter(action="policy.override", ticket=ticket).get()
    assert event.data["reason"] == "planned resize; snapshot taken"

    # A re-plan voids the override, as it voids approvals.
    replanned = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/plan/", {"reason": "again"}, format="json"
    )
    assert replanned.status_code == 202, replanned.json()
    ticket = drain(ticket)
    assert (
        ticket.current_plan.plan_sha256 != sha or ticket.current_plan_id != done.json()["plan_run"]
    )
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "override_needed"
    assert body["policies"]["overrides"] == []


BROKEN = "package broken\n\ndeny contains msg if {\n"

# Nine million steps and nothing kept: slow, never big.
ENDLESS = """package endless

deny contains "never" if {
\tsome i in numbers.range(1, 30000)
\tsome j in numbers.range(1, 30000)
\ti * j == -1
}
"""


def test_a_broken_policy_and_an_endless_one_fail_closed_naming_themselves(
    author: User, infra_repo: Path, inline: list[int], settings: Any
) -> None:
    settings.POLICY_TIMEOUT = 3
    (infra_repo / "policies" / "broken.rego").write_text(BROKEN)
    (infra_repo / "policies" / "endless.rego").write_text(ENDLESS)
    commit_all(infra_repo, "policies: one broken, one endless")
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.APPROVED
    results = {r.policy: r for r in PolicyResult.objects.filter(run=ticket.current_plan)}
    broken = results["broken"]
    assert broken.outcome == "error" and broken.level == "hard"
    assert broken.messages[0].startswith("broken.rego: broken.rego:3:")
    endless = results["endless"]
    assert endless.outcome == "error"
    assert "timed out after 3 seconds" in endless.messages[0]
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "blocked"
    refused = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert refused.status_code == 409
    assert "policy broken (repo, hard) could not be evaluated" in refused.json()["detail"]


MARKER = """package custom_marker

# Always says where it was read from: the environment's own folder.
warn contains "read from compliance/rego" if true
"""

NEVER_READ = """package never_read

deny contains "the default folder was read" if true
"""


def test_an_environment_s_custom_policy_folder_is_the_one_read(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    custom = infra_repo / "compliance" / "rego"
    shutil.copytree(infra_repo / "policies", custom)
    (custom / "custom_marker.rego").write_text(MARKER)
    (infra_repo / "policies" / "never_read.rego").write_text(NEVER_READ)
    commit_all(infra_repo, "policies: dev reads compliance/rego")
    dev = Environment.objects.get(name="dev")
    dev.policy_dir = "compliance/rego"
    environment_save(actor="admin", env=dev, changed=["policy_dir"])

    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    results = {r.policy: r for r in PolicyResult.objects.filter(run=ticket.current_plan)}
    assert set(results) == {"tags", "instance_sizes", "public_s3", "custom_marker"}
    assert {r.folder for r in results.values()} == {"compliance/rego"}
    marker = results["custom_marker"]
    assert (marker.outcome, marker.warnings) == ("warn", ["read from compliance/rego"])
    assert marker.where == "compliance/rego/custom_marker.rego"
    check = PolicyCheck.objects.get(run=ticket.current_plan)
    assert (check.repo_dir, check.status) == ("compliance/rego", "warnings")
