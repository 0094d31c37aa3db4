"""Two stacks with the real Terraform (issue 21): each deploys on its own with its own
state, lock and history; the network's deployment plans the application layer, which reads
the network's outputs through terraform_remote_state on the local backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Deployment, Stack, Ticket
from deployments.selectors.rollbacks import last_known_good
from deployments.services.stacks import local_state_file, stack_lock
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev
from tests.helpers.stacks import sample_stacks

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]


def _outputs(path: Path) -> dict[str, Any]:
    return {k: v["value"] for k, v in json.loads(path.read_text())["outputs"].items()}


def test_two_stacks_deploy_with_their_own_state_and_the_dependent_is_planned(
    author: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    default = Stack.default()  # made by the migration (a flushed test database lacks it)
    network, app = sample_stacks(devops_lead)
    # Before the network is deployed, the application layer plans and applies without it.
    first = drain(file_dev(author, stack="app", title="App before the network"))
    assert first.status == TicketStatus.COMPLETED, first.runs.order_by("id").last().log
    app_state = local_state_file(app, "dev")
    assert app_state is not None and _outputs(app_state)["vpc_id"] == "not-deployed"

    ticket = drain(file_dev(author, stack="network", title="Network change"))
    assert ticket.status == TicketStatus.COMPLETED, ticket.runs.order_by("id").last().log
    assert ticket.stack == network
    plan = ticket.runs.order_by("id").first()
    assert plan is not None and plan.stack == network
    assert "stacks/network" not in plan.var_file and plan.var_file.startswith("environments/dev")
    network_state = local_state_file(network, "dev")
    assert network_state is not None and network_state.is_file()
    vpc_id = _outputs(network_state)["vpc_id"]
    # The default stack's state was not touched: its workspace has no state yet.
    default_state = local_state_file(default, "dev")
    assert default_state is not None and not default_state.exists()
    assert network_state != default_state

    # The run trigger: the application layer got a plan ticket in dev, marked and audited.
    triggered = Ticket.objects.get(stack=app, triggered_by__isnull=False)
    deployment = Deployment.objects.get(ticket=ticket)
    assert triggered.triggered_by == deployment and triggered.environment.name == "dev"
    assert triggered.source == "trigger"
    event = AuditEvent.objects.get(action="stack.trigger", ticket=triggered)
    assert event.data["upstream"] == "network" and event.data["deployment"] == deployment.pk
    # The API's ticket detail names the trigger (the upstream ticket: its author sees it).
    detail = api_for(author).get(f"/api/v1/tickets/{triggered.pk}/").json()
    assert detail["triggered_by"] == {
        "deployment": deployment.pk,
        "stack": "network",
        "ticket": ticket.pk,
    }

    triggered = drain(triggered)
    assert triggered.status == TicketStatus.COMPLETED, triggered.status_reason
    # The application layer read the network's outputs from its state.
    assert _outputs(app_state)["vpc_id"] == vpc_id != "not-deployed"
    app_plan = triggered.runs.order_by("id").first()
    assert app_plan is not None and "TF_VAR" not in app_plan.log

    # History and last known good per stack and environment.
    dev = ticket.environment
    assert list(Deployment.objects.filter(stack=network).values_list("ticket", flat=True)) == [
        ticket.pk
    ]
    assert list(Deployment.objects.filter(stack=app).values_list("ticket", flat=True)) == [
        triggered.pk,
        first.pk,
    ]
    good = last_known_good(dev, stack_id=network.pk)
    assert good is not None and good.ticket_id == ticket.pk
    assert last_known_good(dev, stack_id=default.pk) is None

    # Each stack's lock is its own: holding the network's leaves the application's free.
    with stack_lock(dev.pk, network.pk) as held:
        assert held.try_acquire()
        assert not stack_lock(dev.pk, network.pk).try_acquire()
        with stack_lock(dev.pk, app.pk) as other:
            assert other.try_acquire()


def test_the_default_stack_still_runs_the_repository_s_single_root(
    author: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    Stack.default()
    sample_stacks(devops_lead)
    ticket = drain(file_dev(author, stack="default"))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    assert "Apply complete! Resources: 24 added" in ticket.runs.get(kind="apply").log
    # Nothing depends on the default stack: no trigger.
    assert not Ticket.objects.exclude(pk=ticket.pk).exists()


def _file(user: User, env: str, stack: str) -> Ticket:
    filed = api_for(user).post(
        "/api/v1/tickets/",
        {"title": f"{stack} in {env}", "environment": env, "stack": stack},
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    return drain(Ticket.objects.get(pk=filed.json()["id"]))


def _approve(user: User, ticket: Ticket) -> None:
    reviewed = Ticket.objects.get(pk=ticket.pk).current_plan.plan_sha256
    answer = api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
    )
    assert answer.json()["status"] == "approved", answer.json()


def test_in_staging_the_application_s_apply_waits_for_the_network_deployment(
    author: User, lead: User, devops_lead: User, infra_repo: Path, inline: list[int]
) -> None:
    Stack.default()
    network, app = sample_stacks(devops_lead)
    net = _file(author, "staging", "network")
    _approve(lead, net)
    assert api_for(author).post(f"/api/v1/tickets/{net.pk}/deploy/").status_code == 202
    # The application layer, filed meanwhile: approved, but its apply waits for the network.
    mine = _file(author, "staging", "app")
    _approve(lead, mine)
    refused = api_for(author).post(f"/api/v1/tickets/{mine.pk}/deploy/")
    assert refused.status_code == 409
    assert f"network in staging (ticket #{net.pk}) is still deploying" in (refused.json()["detail"])
    net = drain(net)
    assert net.status == TicketStatus.MONITORING, net.status_reason
    # The network's deployment planned the application layer in staging.
    triggered = Ticket.objects.get(stack=app, triggered_by__ticket=net)
    assert triggered.environment.name == "staging"
    triggered = drain(triggered)
    assert triggered.status == TicketStatus.AWAITING_APPROVAL, triggered.status_reason
    # Now the waiting ticket may deploy; its plan predates the network's state, so the
    # triggered one (planned against it) is what carries the network's outputs.
    _approve(lead, triggered)
    deployed = api_for(author).post(f"/api/v1/tickets/{triggered.pk}/deploy/")
    assert deployed.status_code == 202, deployed.json()
    triggered = drain(triggered)
    assert triggered.status == TicketStatus.MONITORING, triggered.status_reason
    network_state, app_state = (
        local_state_file(network, "staging"),
        local_state_file(app, "staging"),
    )
    assert network_state is not None and app_state is not None
    assert _outputs(app_state)["vpc_id"] == _outputs(network_state)["vpc_id"]
    assert len(_outputs(app_state)["app_servers"]) == 2  # staging's var-file
    # Dev was not touched by either.
    assert not Deployment.objects.filter(environment__name="dev").exists()
