"""Stacks without Terraform (issue 21): declaring them (a cycle is refused), tickets naming
theirs, the apply that waits for an upstream deployment, and concurrency across stacks."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from deployments import policy
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, Stack, TerraformRun, Ticket
from deployments.services._base import InputError, locked_ticket
from deployments.services.runs.start import apply_start
from deployments.services.stacks import StackInput, stack_for_ticket, stack_save
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

pytestmark = pytest.mark.django_db


def _stacks(actor: Any) -> tuple[Stack, Stack]:
    network = stack_save(actor=actor, data=StackInput(name="network", root_dir="stacks/network"))
    app = stack_save(
        actor=actor,
        data=StackInput(name="app", root_dir="stacks/app", depends_on=("network",)),
    )
    return network, app


def test_a_dependency_cycle_is_refused_naming_it_and_nothing_changes(
    devops_lead: User,
) -> None:
    network, _app = _stacks(devops_lead)
    stack_save(actor=devops_lead, data=StackInput(name="data", depends_on=("app",)))
    events = AuditEvent.objects.count()
    with pytest.raises(InputError) as refused:
        stack_save(actor=devops_lead, data=StackInput(name="network", depends_on=("data",)))
    assert refused.value.field == "depends_on"
    assert "network → data → app → network" in refused.value.message
    assert not network.depends_on.exists() and AuditEvent.objects.count() == events
    # Through the API: a 400 whose detail names the cycle.
    response = api_for(devops_lead).put(
        "/api/v1/stacks/network/", {"name": "network", "depends_on": ["app"]}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert "network → app → network" in response.json()["detail"]
    assert not Stack.objects.get(name="network").depends_on.exists()
    # A stack may not depend on itself either.
    response = api_for(devops_lead).put(
        "/api/v1/stacks/app/", {"name": "app", "depends_on": ["app"]}, format="json"
    )
    assert response.status_code == 400 and "app → app" in response.json()["detail"]


def test_declaring_stacks_is_audited_and_a_devops_lead_s(devops_lead: User, author: User) -> None:
    response = api_for(author).put("/api/v1/stacks/network/", {}, format="json")
    assert response.status_code == 403 and not Stack.objects.filter(name="network").exists()
    response = api_for(devops_lead).put(
        "/api/v1/stacks/network/",
        {
            "root_dir": "stacks/network",
            "repository_credentials": "NETWORK_REPO_TOKEN",
            "environment_rules": {"staging": {"required_roles": ["devops_lead"]}},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["root_dir"] == "stacks/network" and body["depends_on"] == []
    assert body["environment_rules"] == {"staging": {"required_roles": ["devops_lead"]}}
    event = AuditEvent.objects.get(action="stack.create")
    assert event.data["stack"] == "network" and event.actor == devops_lead
    # PUT again replaces it (200), audited as a change.
    response = api_for(devops_lead).put(
        "/api/v1/stacks/network/", {"root_dir": "layers/network"}, format="json"
    )
    assert response.status_code == 200 and response.json()["environment_rules"] == {}
    assert AuditEvent.objects.filter(action="stack.update").count() == 1
    # Credentials are named, never given.
    response = api_for(devops_lead).put(
        "/api/v1/stacks/data/",
        {"repository": "https://user:secret@example.com/data.git"},
        format="json",
    )
    assert response.status_code == 400 and "repository" in response.json()["detail"]
    assert "secret" not in str(Stack.objects.values_list("repository", flat=True))


def test_a_ticket_names_its_stack_when_there_are_several(devops_lead: User, author: User) -> None:
    only = Stack.default()
    assert stack_for_ticket("") == only  # one stack: the ticket's without asking
    _stacks(devops_lead)
    with pytest.raises(InputError) as refused:
        stack_for_ticket("")
    assert refused.value.field == "stack" and "app, default, network" in refused.value.message
    with pytest.raises(InputError):
        stack_for_ticket("nope")
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "x", "environment": "dev"}, format="json"
    )
    assert response.status_code == 400 and "stack is required" in response.json()["detail"]
    assert not Ticket.objects.exists()


def test_stacks_api_shows_environments_and_last_deployment(devops_lead: User, author: User) -> None:
    network, _app = _stacks(devops_lead)
    dev = Environment.objects.get(name="dev")
    deployment = DeploymentFactory(ticket=TicketFactory(environment=dev, stack=network))
    assert deployment.stack == network and deployment.run.stack == network
    listing = api_for(author).get("/api/v1/stacks/").json()
    assert [s["name"] for s in listing] == ["app", "default", "network"]
    assert listing[0]["depends_on"] == ["network"] and listing[2]["dependents"] == ["app"]
    detail = api_for(author).get("/api/v1/stacks/network/").json()
    envs = {e["environment"]: e for e in detail["environments"]}
    assert envs["dev"]["last_deployment"]["id"] == deployment.pk
    assert envs["dev"]["last_deployment"]["ticket"] == deployment.ticket_id
    assert envs["staging"]["last_deployment"] is None
    assert api_for(author).get("/api/v1/stacks/nope/").status_code == 404
    # History and the ticket list, scoped to a stack.
    history = api_for(devops_lead).get("/api/v1/deployments/?stack=app").json()
    assert history["results"] == [] if isinstance(history, dict) else history == []
    tickets = api_for(author).get("/api/v1/tickets/?stack=network").json()["results"]
    assert [t["id"] for t in tickets] == [deployment.ticket_id]
    assert tickets[0]["stack"] == "network"
    assert api_for(author).get("/api/v1/tickets/?stack=app").json()["results"] == []


def _approved(env: Environment, stack: Stack, author: User) -> Ticket:
    ticket = TicketFactory(environment=env, stack=stack, author=author, status="approved")
    plan = RunFactory(ticket=ticket, plan_sha256="a" * 64)
    ticket.current_plan = plan
    ticket.save(update_fields=["current_plan"])
    return ticket


def _applying(env: Environment, stack: Stack, author: User) -> Ticket:
    ticket = TicketFactory(environment=env, stack=stack, author=author, status="applying")
    plan = RunFactory(ticket=ticket, plan_sha256="b" * 64)
    RunFactory(ticket=ticket, kind=RunKind.APPLY, status=RunStatus.RUNNING, plan=plan)
    return ticket


def _start(ticket: Ticket) -> TerraformRun | None:
    with transaction.atomic():
        return apply_start(locked_ticket(ticket.pk), actor="test")


def test_the_dependent_s_apply_waits_for_the_upstream_deployment(
    devops_lead: User, author: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    network, app = _stacks(devops_lead)
    staging = Environment.objects.get(name="staging")
    staging.max_concurrent_applies = 0  # only the dependency holds it back
    staging.save()
    upstream = _applying(staging, network, author)
    ticket = _approved(staging, app, author)
    with pytest.raises(policy.PolicyError) as refused:
        _start(ticket)
    assert refused.value.kind == policy.PolicyError.STATE
    assert f"network in staging (ticket #{upstream.pk}) is still deploying" in (
        refused.value.message
    )
    assert not TerraformRun.objects.filter(ticket=ticket, kind=RunKind.APPLY).exists()
    # Another environment is not held back by it.
    dev_ticket = _approved(Environment.objects.get(name="dev"), app, author)
    assert _start(dev_ticket) is not None
    # A failed upstream apply holds it back too; once the upstream is done, it applies.
    TerraformRun.objects.filter(ticket=upstream, kind=RunKind.APPLY).update(status=RunStatus.FAILED)
    Ticket.objects.filter(pk=upstream.pk).update(status=TicketStatus.APPLY_FAILED)
    with pytest.raises(policy.PolicyError, match="failed to apply"):
        _start(ticket)
    Ticket.objects.filter(pk=upstream.pk).update(status=TicketStatus.COMPLETED)
    run = _start(ticket)
    assert run is not None and run.stack == app


def test_the_deploy_endpoint_answers_409_with_the_reason(
    devops_lead: User, author: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    network, app = _stacks(devops_lead)
    dev = Environment.objects.get(name="dev")
    _applying(dev, network, author)
    ticket = _approved(dev, app, author)
    response = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/", format="json")
    assert response.status_code == 409, response.json()
    assert "waits for its dependencies" in response.json()["detail"]


def test_one_apply_at_a_time_per_environment_unless_it_allows_more(
    devops_lead: User, author: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    network = stack_save(actor=devops_lead, data=StackInput(name="network"))
    data = stack_save(actor=devops_lead, data=StackInput(name="data"))
    app = stack_save(actor=devops_lead, data=StackInput(name="app"))
    prod = Environment.objects.get(name="prod")
    assert prod.max_concurrent_applies == 1  # the shared change window: one at a time
    _applying(prod, network, author)
    ticket = _approved(prod, data, author)
    with pytest.raises(policy.PolicyError, match=r"prod is busy: network \(ticket #\d+\)"):
        _start(ticket)
    prod.max_concurrent_applies = 2
    prod.save()
    assert _start(ticket) is not None  # two stacks at once
    with pytest.raises(policy.PolicyError, match="prod is busy"):
        _start(_approved(prod, app, author))  # not three
    # The same stack never applies twice at once, whatever the environment allows.
    prod.max_concurrent_applies = 0
    prod.save()
    with pytest.raises(policy.PolicyError, match="prod is busy"):
        _start(_approved(prod, data, author))
    assert _start(_approved(prod, app, author)) is not None


def test_a_stack_tightens_its_environment_s_rule(devops_lead: User, author: User) -> None:
    from django.utils import timezone

    data = stack_save(
        actor=devops_lead,
        data=StackInput(
            name="data", environment_rules={"staging": {"required_roles": ["devops_lead"]}}
        ),
    )
    staging = Environment.objects.get(name="staging")
    base = policy.rule_for(TicketFactory(environment=staging), now=timezone.now())
    assert "devops_lead" not in base.all_of
    tightened = policy.rule_for(TicketFactory(environment=staging, stack=data), now=timezone.now())
    assert tightened.all_of == (*base.all_of, "devops_lead")
    assert (tightened.any_of, tightened.count) == (base.any_of, base.count)
    # Elsewhere the environment's own rule applies.
    dev = Environment.objects.get(name="dev")
    assert policy.rule_for(
        TicketFactory(environment=dev, stack=data), now=timezone.now()
    ) == policy.rule_for(TicketFactory(environment=dev), now=timezone.now())


def test_the_worker_asks_again_when_the_apply_would_start(
    devops_lead: User, author: User, monkeypatch: Any
) -> None:
    from deployments.services.runs.claim import claim_apply

    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    monkeypatch.setattr(
        "deployments.services.runs.claim.branch_check", lambda environment, sha: None
    )
    network, app = _stacks(devops_lead)
    dev = Environment.objects.get(name="dev")
    dev.max_concurrent_applies = 0
    dev.save()
    ticket = _approved(dev, app, author)
    run = _start(ticket)
    assert run is not None
    upstream = _applying(dev, network, author)  # started after the dependent's was queued
    assert claim_apply(run.pk, worker="test") is None
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and ticket.status == TicketStatus.APPROVED
    assert f"(ticket #{upstream.pk}) is still deploying" in ticket.status_reason
