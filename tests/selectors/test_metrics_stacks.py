"""Metrics of one stack (issue 21): ``?stack=`` counts that stack's deployments, time to
restore by that stack's next good deployment, its approvals and its waiting tickets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import Environment, Stack, Ticket
from deployments.selectors import metrics
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.pages import signed_in
from tests.helpers.stacks import sample_stacks

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def _deployed(stack: Stack, finished: dt.datetime, outcome: str = "succeeded") -> Ticket:
    with time_machine.travel(finished - dt.timedelta(hours=2), tick=False):
        ticket = TicketFactory(
            environment=Environment.objects.get(name="dev"),
            stack=stack,
            status=TicketStatus.COMPLETED,
        )
    DeploymentFactory(ticket=ticket, finished_at=finished, outcome=outcome)
    return ticket


@pytest.fixture
def two_stacks(devops_lead: User) -> dict[str, Any]:
    now = dt.datetime.now(UTC)
    day = dt.timedelta(days=1)
    network, app = sample_stacks(devops_lead)
    _deployed(network, now - 3 * day)
    _deployed(network, now - 2 * day, outcome="failed")
    _deployed(app, now - 2 * day + dt.timedelta(hours=1))  # app's, not a network restore
    _deployed(network, now - day)  # the network's restore: 1 day after its failure
    _deployed(app, now - 5 * day)
    return {"network": network, "app": app, "now": now}


def _dev(payload: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in payload["environments"] if e["environment"] == "dev")


def test_one_stacks_figures(two_stacks: dict[str, Any]) -> None:
    now, envs = two_stacks["now"], list(Environment.objects.filter(name="dev"))
    network = _dev(metrics.metrics_for(envs, 30, now, two_stacks["network"]))
    assert (network["deployments"], network["failures"]) == (3, 1)
    assert network["time_to_restore"]["median_seconds"] == pytest.approx(86400, abs=1)
    app = _dev(metrics.metrics_for(envs, 30, now, two_stacks["app"]))
    assert (app["deployments"], app["failures"]) == (2, 0)
    every = _dev(metrics.metrics_for(envs, 30, now))
    assert every["deployments"] == 5
    # Across stacks, the app's deployment an hour after the failure restored the environment.
    assert every["time_to_restore"]["median_seconds"] == pytest.approx(3600, abs=1)


def test_the_api_and_the_page_take_the_stack(two_stacks: dict[str, Any], operations: User) -> None:
    response = api_for(operations).get("/api/v1/metrics/?environment=dev&stack=app")
    assert response.status_code == 200, response.json()
    assert response.json()["stack"] == "app"
    assert _dev(response.json())["deployments"] == 2
    unknown = api_for(operations).get("/api/v1/metrics/?stack=nope")
    assert unknown.status_code == 400 and unknown.json()["detail"] == "stack: no such stack"
    page = signed_in(operations).get("/metrics/?environment=dev&stack=network")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="metrics-stack">Stack <strong>network</strong> only' in html
    assert '<input type="hidden" name="stack" value="network">' in html
    # The stacks page links each stack's metrics.
    stacks_page = signed_in(operations).get("/stacks/").content.decode()
    assert 'href="/metrics/?stack=network"' in stacks_page
    assert signed_in(operations).get("/metrics/?stack=nope").status_code == 400
