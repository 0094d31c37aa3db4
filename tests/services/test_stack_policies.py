"""A stack's own policy folder without Terraform (issues 20 and 21): declaring it (a
folder inside the repository, like the environment's), and what a plan of the stack then
evaluates: the environment's folder and the stack's, whose policies are named by their
folder so that same-named packages stay distinct in results and overrides; a stack folder
that cannot be read fails closed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from deployments import terraform as tf
from deployments.models import AuditEvent, PolicyResult, Stack, Ticket
from deployments.services import policies as service
from deployments.services._base import InputError
from deployments.services.stacks import StackInput, stack_save
from deployments.terraform.rego import read_policy_folder
from tests.helpers.api import api_for
from tests.helpers.policies import POLICIES, aws_plan, change
from tests.helpers.tickets import approve, awaiting

pytestmark = pytest.mark.django_db

STACK_DIR = "stacks/app/policies"

# A stricter `data_protection` of the stack's own: soft in dev, where the environment's
# folder applies its own only in prod.
STACK_DATA_PROTECTION = """package data_protection

deny contains msg if {
\tsome rc in input.plan.resource_changes
\t"delete" in rc.change.actions
\tmsg := concat("", [rc.address, " is the app layer's: never deleted without a lead"])
}
"""


@pytest.mark.parametrize(
    "bad", ["/etc/policies", "../policies", "stacks/../../policies", "stacks/app/.."]
)
def test_a_stack_policy_folder_is_a_folder_inside_its_repository(
    devops_lead: User, bad: str
) -> None:
    with pytest.raises(InputError) as refused:
        stack_save(actor=devops_lead, data=StackInput(name="app", policy_dir=bad))
    assert refused.value.field == "policy_dir"
    assert "relative path inside the repository" in refused.value.message
    assert not Stack.objects.filter(name="app").exists()
    response = api_for(devops_lead).put("/api/v1/stacks/app/", {"policy_dir": bad}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith("policy_dir: ")
    assert not Stack.objects.filter(name="app").exists()


def test_the_stacks_api_declares_and_shows_the_policy_folder(devops_lead: User) -> None:
    client = api_for(devops_lead)
    response = client.put(
        "/api/v1/stacks/app/",
        {"root_dir": "stacks/app", "policy_dir": "stacks/app/policies/"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["policy_dir"] == STACK_DIR  # a trailing / dropped
    assert Stack.objects.get(name="app").policy_dir == STACK_DIR
    assert client.get("/api/v1/stacks/app/").json()["policy_dir"] == STACK_DIR
    listed = {s["name"]: s for s in client.get("/api/v1/stacks/").json()}
    assert listed["app"]["policy_dir"] == STACK_DIR
    event = AuditEvent.objects.get(action="stack.create")
    assert event.data["policy_dir"] == STACK_DIR
    # Replacing the stack without it: none.
    response = client.put("/api/v1/stacks/app/", {"root_dir": "stacks/app"}, format="json")
    assert response.status_code == 200 and response.json()["policy_dir"] == ""


def test_the_admin_declares_the_policy_folder_and_refuses_one_outside() -> None:
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    app = stack_save(actor=admin, data=StackInput(name="app"))
    form = {
        "description": "",
        "repository": "",
        "repository_credentials": "",
        "webhook_secret_env": "",
        "web_url": "",
        "branch": "",
        "root_dir": "stacks/app",
        "var_file_pattern": "",
        "policy_dir": "/srv/policies",
        "backend_config": "[]",
        "environment_rules": "{}",
    }
    url = f"/admin/deployments/stack/{app.pk}/change/"
    page = client.post(url, form)
    assert page.status_code == 200
    assert "policy_dir must be a relative path inside the repository" in page.content.decode()
    assert Stack.objects.get(pk=app.pk).policy_dir == ""
    page = client.post(url, {**form, "policy_dir": STACK_DIR})
    assert page.status_code == 302
    assert Stack.objects.get(pk=app.pk).policy_dir == STACK_DIR
    assert AuditEvent.objects.get(action="stack.update").data["policy_dir"] == STACK_DIR


def _evaluated_with_stack_folder(ticket: Ticket, plan: dict[str, Any], **stack: Any) -> Ticket:
    """As the worker does after a plan of a stack with its own folder: the environment's
    folder (the sample's policies) and the stack's, kept and evaluated."""
    files, manifest = read_policy_folder(POLICIES)
    result = tf.PlanResult(
        exit_code=0,
        policy_document=json.dumps(plan).encode(),
        policy_dir="policies",
        policy_files=tuple(sorted(files.items())),
        policy_manifest=manifest,
        stack_policy_dir=STACK_DIR,
        **stack,
    )
    run = ticket.current_plan
    assert run is not None
    with transaction.atomic():
        service.policy_input_keep(run, result)
        service.policy_evaluate(ticket, run)
    return Ticket.objects.get(pk=ticket.pk)


def test_same_named_policies_of_two_folders_stay_distinct(author: User, devops_lead: User) -> None:
    # The environment's data_protection applies in dev too here (its manifest), so both
    # folders' same-named policies fail softly on one plan.
    files, manifest = read_policy_folder(POLICIES)
    manifest["policies"]["data_protection"]["environments"] = ["dev"]
    ticket = awaiting("dev", author)
    destroy = aws_plan(change("aws_db_instance.main", "aws_db_instance", ["delete"], None))
    files_kept = tuple(sorted(files.items()))
    result = tf.PlanResult(
        exit_code=0,
        policy_document=json.dumps(destroy).encode(),
        policy_dir="policies",
        policy_files=files_kept,
        policy_manifest=manifest,
        stack_policy_dir=STACK_DIR,
        stack_policy_files=(("data_protection.rego", STACK_DATA_PROTECTION),),
        stack_policy_manifest={"policies": {"data_protection": {"level": "soft"}}},
    )
    with transaction.atomic():
        service.policy_input_keep(ticket.current_plan, result)
        service.policy_evaluate(ticket, ticket.current_plan)
    rows = {r.policy: r for r in PolicyResult.objects.filter(run=ticket.current_plan)}
    env_policy = rows["data_protection"]
    stack_policy = rows[f"{STACK_DIR}/data_protection"]
    assert (env_policy.folder, env_policy.path) == ("policies", "data_protection.rego")
    assert (stack_policy.folder, stack_policy.path) == (
        STACK_DIR,
        f"{STACK_DIR}/data_protection.rego",
    )
    assert stack_policy.where == f"{STACK_DIR}/data_protection.rego"
    assert env_policy.where == "policies/data_protection.rego"
    assert (env_policy.level, env_policy.outcome) == ("soft", "fail")
    assert (stack_policy.level, stack_policy.outcome) == ("soft", "fail")
    assert stack_policy.messages == [
        "aws_db_instance.main is the app layer's: never deleted without a lead"
    ]
    # An override of one is not an override of the other.
    client = api_for(devops_lead)
    url = f"/api/v1/tickets/{ticket.pk}/policy-overrides/"
    sha = ticket.current_plan.plan_sha256
    given = client.post(
        url, {"policy": "data_protection", "plan_sha256": sha, "reason": "moved"}, format="json"
    )
    assert given.status_code == 201, given.json()
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "override_needed"
    assert [n["policy"] for n in body["policies"]["override_needs"]] == [
        f"{STACK_DIR}/data_protection"
    ]
    given = client.post(
        url,
        {"policy": f"{STACK_DIR}/data_protection", "plan_sha256": sha, "reason": "moved too"},
        format="json",
    )
    assert given.status_code == 201, given.json()
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "warnings"
    folders = {(r["policy"], r["folder"]) for r in body["policies"]["results"]}
    assert ("data_protection", "policies") in folders
    assert (f"{STACK_DIR}/data_protection", STACK_DIR) in folders
    # The admin's list of results shows each one's folder.
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client_admin = Client()
    client_admin.force_login(admin)
    listed = client_admin.get("/admin/deployments/policyresult/").content.decode()
    assert '<td class="field-folder">stacks/app/policies</td>' in listed
    # The audit names each result's folder.
    event = AuditEvent.objects.get(action="policy.evaluate", ticket=ticket)
    assert {(r["policy"], r["folder"]) for r in event.data["results"]} >= {
        ("data_protection", "policies"),
        (f"{STACK_DIR}/data_protection", STACK_DIR),
    }


def test_a_stack_folder_that_cannot_be_read_fails_closed_naming_itself(
    author: User, tech_lead: User
) -> None:
    ticket = _evaluated_with_stack_folder(
        awaiting("staging", author),
        aws_plan(),
        stack_policy_folder_error=f"{STACK_DIR}: no such folder at this commit",
    )
    rows = {r.policy: r for r in PolicyResult.objects.filter(run=ticket.current_plan)}
    folder = rows[f"{STACK_DIR}/(policy folder)"]
    assert (folder.level, folder.outcome, folder.folder) == ("hard", "error", STACK_DIR)
    assert folder.messages == [f"{STACK_DIR}: no such folder at this commit"]
    # The environment's folder is evaluated all the same.
    assert rows["tags"].outcome == "pass"
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "blocked"
    refused = approve(tech_lead, ticket)
    assert refused.status_code == 409
    assert (
        f"policy {STACK_DIR}/(policy folder) (repo, hard) could not be evaluated"
        in (refused.json()["detail"])
    )
    # The dry run reads the same folders, and fails the same way.
    dry = api_for(author).post(
        "/api/v1/policies/evaluate/", {"run": ticket.current_plan_id}, format="json"
    )
    assert dry.status_code == 200 and dry.json()["status"] == "blocked"
    assert dry.json()["results"][0]["policy"] == f"{STACK_DIR}/(policy folder)"


def test_the_dry_run_evaluates_the_stack_s_folder_too(author: User) -> None:
    subnet = aws_plan(
        change("aws_subnet.extra", "aws_subnet", ["create"], {"cidr_block": "10.0.9.0/24"})
    )
    stack_files, stack_manifest = read_policy_folder(
        POLICIES.parent / "stacks" / "app" / "policies"
    )
    ticket = _evaluated_with_stack_folder(
        awaiting("dev", author),
        subnet,
        stack_policy_files=tuple(sorted(stack_files.items())),
        stack_policy_manifest=stack_manifest,
    )
    recorded = {r.policy: r.outcome for r in PolicyResult.objects.filter(run=ticket.current_plan)}
    assert recorded[f"{STACK_DIR}/app_layer"] == "fail"
    dry = api_for(author).post(
        "/api/v1/policies/evaluate/", {"run": ticket.current_plan_id}, format="json"
    )
    assert dry.status_code == 200, dry.json()
    results = {r["policy"]: r for r in dry.json()["results"]}
    assert {p: r["outcome"] for p, r in results.items()} == recorded
    app_layer = results[f"{STACK_DIR}/app_layer"]
    assert app_layer["folder"] == STACK_DIR
    assert app_layer["path"] == f"{STACK_DIR}/app_layer.rego"
    assert app_layer["messages"] == [
        "aws_subnet.extra would create aws_subnet: the network layer owns it; change it on "
        "the network stack"
    ]
