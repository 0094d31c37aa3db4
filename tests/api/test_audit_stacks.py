"""A stack's own audit trail (issue 21): ``GET /api/v1/audit/?stack=``, the audit page's
stack filter and the stacks page's link to it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments.choices import DriftStatus
from deployments.models import AuditEvent, Deployment, DriftCheck, Environment, Stack
from deployments.services import drift
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.stacks import sample_stacks

pytestmark = pytest.mark.django_db


def _record(*, ticket: Any = None, action: str = "test.e", data: Any = None) -> AuditEvent:
    with transaction.atomic():
        return services.audit_record(actor="system", action=action, ticket=ticket, data=data or {})


def _drift_found(deployment: Deployment) -> AuditEvent:
    """The event a drift check that found drift in ``deployment`` records (no ticket)."""
    check = DriftCheck.objects.create(
        environment=deployment.environment,
        stack=deployment.stack,
        deployment=deployment,
        commit_sha=deployment.commit_sha,
        status=DriftStatus.DRIFTED,
        exit_code=2,
        summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
        started_at=timezone.now(),
    )
    with transaction.atomic():
        drift._drift_detected(check, deployment)
    return AuditEvent.objects.get(action="drift.detected", data__drift_check=check.pk)


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@dataclass
class Trails:
    network: list[int]  # newest first, as the API answers
    app: list[int]
    app_prod: int  # the event of app's prod ticket


@pytest.fixture
def trails(devops_lead: User) -> Trails:
    """Events of two stacks and of neither, interleaved."""
    network, app = sample_stacks(devops_lead)
    declared = {e.data["stack"]: e.pk for e in AuditEvent.objects.filter(action="stack.create")}
    dev = Environment.objects.get(name="dev")
    prod = Environment.objects.get(name="prod")
    net_ticket = TicketFactory(environment=dev, stack=network)
    app_ticket = TicketFactory(environment=dev, stack=app)
    app_prod_ticket = TicketFactory(environment=prod, stack=app)
    default_ticket = TicketFactory(environment=dev, stack=Stack.default())
    net_note = _record(ticket=net_ticket, action="ticket.note")
    app_note = _record(ticket=app_ticket, action="ticket.note")
    _record(ticket=default_ticket, action="ticket.note")  # the default stack's
    _record(action="account.signin")  # no stack's
    app_prod = _record(ticket=app_prod_ticket, action="approval.grant")
    # Drift found in a deployment of each stack: the event names no ticket.
    net_deployment = DeploymentFactory(ticket=TicketFactory(environment=dev, stack=network))
    app_deployment = DeploymentFactory(ticket=TicketFactory(environment=dev, stack=app))
    net_drift = _drift_found(net_deployment)
    app_drift = _drift_found(app_deployment)
    # A run trigger that could not file app's ticket: on network's ticket, naming app.
    failed = _record(
        ticket=net_ticket,
        action="stack.trigger_failed",
        data={"stack": "app", "upstream": "network", "reason": "frozen"},
    )
    # app changed: audited with no ticket, naming the stack.
    stack_save_event = _update(devops_lead, "app")
    return Trails(
        network=[failed.pk, net_drift.pk, net_note.pk, declared["network"]],
        app=[
            stack_save_event,
            failed.pk,
            app_drift.pk,
            app_prod.pk,
            app_note.pk,
            declared["app"],
        ],
        app_prod=app_prod.pk,
    )


def _update(actor: User, name: str) -> int:
    from deployments.services.stacks import StackInput, stack_save

    stack_save(
        actor=actor,
        data=StackInput(name=name, root_dir=f"stacks/{name}", depends_on=("network",)),
    )
    return AuditEvent.objects.filter(action="stack.update", data__stack=name).get().pk


def test_a_stack_s_trail_is_its_tickets_declarations_triggers_and_drift(
    trails: Trails, operations: User
) -> None:
    client = api_for(operations)
    assert _ids(client.get("/api/v1/audit/?stack=network")) == trails.network
    assert _ids(client.get("/api/v1/audit/?stack=app")) == trails.app
    # Other filters narrow it further; empty means every stack, like the other ?stack=.
    assert _ids(client.get("/api/v1/audit/?stack=app&action=stack.*")) == [
        trails.app[0],
        trails.app[1],
        trails.app[-1],
    ]
    everything = _ids(client.get("/api/v1/audit/?stack="))
    assert set(trails.network) | set(trails.app) < set(everything)
    # The streamed export takes the same filter.
    export = client.get("/api/v1/audit/?stack=network&format=jsonl")
    assert export.status_code == 200
    rows = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert [row["id"] for row in rows] == trails.network


def test_a_viewer_never_sees_the_prod_events_of_a_stack(trails: Trails, lead: User) -> None:
    shown = _ids(api_for(lead).get("/api/v1/audit/?stack=app"))
    assert shown == [pk for pk in trails.app if pk != trails.app_prod]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("stack=nope", "no such stack (one of: app, default, network)"),
        ("stack=%20network", "no such stack"),  # not a name the schema allows
        ("stack=Bad%00", ""),
    ],
)
def test_an_unknown_stack_is_400_naming_the_parameter(
    trails: Trails, operations: User, query: str, problem: str
) -> None:
    for suffix in ("", "&format=jsonl", "&format=csv"):
        response = api_for(operations).get(f"/api/v1/audit/?{query}{suffix}")
        assert response.status_code == 400, (query, suffix)
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"].startswith("stack: ")
        assert problem in response.json()["detail"]


@pytest.mark.parametrize("extra", [0, 12])
def test_the_filter_is_one_query_however_many_events(
    trails: Trails, operations: User, extra: int, django_assert_max_num_queries: Any
) -> None:
    network = Stack.objects.get(name="network")
    dev = Environment.objects.get(name="dev")
    for _ in range(extra):
        deployment = DeploymentFactory(ticket=TicketFactory(environment=dev, stack=network))
        _record(ticket=deployment.ticket, action="ticket.note")
        _drift_found(deployment)
    client = api_for(operations)
    # The audit list's budget (test_audit.py) plus the stack's lookup.
    with django_assert_max_num_queries(7):
        assert len(_ids(client.get("/api/v1/audit/?stack=network&limit=200"))) == 4 + 2 * extra


def test_the_schema_describes_the_parameter(author: User) -> None:
    doc = api_for(author).get("/api/v1/schema/?format=json").json()
    (parameter,) = [
        p for p in doc["paths"]["/api/v1/audit/"]["get"]["parameters"] if p["name"] == "stack"
    ]
    assert parameter["in"] == "query" and parameter["schema"]["type"] == "string"
    assert "trail" in parameter["description"]


# --- the pages ---------------------------------------------------------------------


def _page(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_audit_page_filters_by_stack_and_keeps_it(
    trails: Trails, operations: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.pages import audit as views_audit

    monkeypatch.setattr(views_audit, "PAGE_SIZE", 4)
    client = _page(operations)
    html = client.get("/audit/?stack=app").content.decode()
    shown = [pk for pk in trails.app if f'id="audit-{pk}"' in html]
    assert shown == trails.app[:4] and html.count('<tr id="audit-') == 4
    assert '<option value="app" selected>app</option>' in html
    assert '<option value="network" >network</option>' in html
    # Kept by the older page, the newest link and the exports.
    assert f"stack=app&amp;before={trails.app[3]}" in html
    assert "/api/v1/audit/?stack=app&amp;format=jsonl" in html
    assert "/api/v1/audit/?stack=app&amp;format=csv" in html
    older = client.get(f"/audit/?stack=app&before={trails.app[3]}").content.decode()
    assert [f'id="audit-{pk}"' in older for pk in trails.app] == [False] * 4 + [True] * 2
    assert 'href="?stack=app"' in older  # newest, still of app
    # With another filter too.
    both = client.get("/audit/?stack=network&action=ticket.*").content.decode()
    assert both.count('<tr id="audit-') == 1 and f'id="audit-{trails.network[2]}"' in both
    # An unknown stack is a form error, not an empty trail.
    bad = client.get("/audit/?stack=nope").content.decode()
    assert 'id="audit-error"' in bad and "stack: no such stack" in bad
    assert '<tr id="audit-' not in bad


def test_the_stacks_page_links_each_stack_to_its_trail(
    trails: Trails, operations: User, author: User
) -> None:
    html = _page(operations).get("/stacks/").content.decode()
    for name in ("network", "app"):
        assert f'href="/audit/?stack={name}" id="stack-{name}-audit"' in html
    # Only for those who may read the trail.
    assert 'id="stack-network-audit"' not in _page(author).get("/stacks/").content.decode()
