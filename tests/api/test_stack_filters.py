"""``?stack=`` on the deployment history and on an environment's drift reports (issue 21):
each stack's own rows, with two stacks deployed to the same environment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import DriftStatus
from deployments.models import Deployment, DriftCheck, Environment, Stack
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.stacks import sample_stacks

pytestmark = pytest.mark.django_db


def _deploy(stack: Stack, env_name: str, minutes_ago: int) -> Deployment:
    env = Environment.objects.get(name=env_name)
    return DeploymentFactory(
        ticket=TicketFactory(environment=env, stack=stack),
        finished_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
    )


def _results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    body = response.json()
    rows: list[dict[str, Any]] = body["results"] if isinstance(body, dict) else body
    return rows


def test_the_history_of_each_stack(devops_lead: User) -> None:
    network, app = sample_stacks(devops_lead)
    # Interleaved in time and environments; the default stack's too.
    net_dev = _deploy(network, "dev", 50)
    app_dev = _deploy(app, "dev", 40)
    net_staging = _deploy(network, "staging", 30)
    app_staging = _deploy(app, "staging", 20)
    default_dev = _deploy(Stack.default(), "dev", 10)
    client = api_for(devops_lead)
    rows = _results(client.get("/api/v1/deployments/?stack=network"))
    assert [r["id"] for r in rows] == [net_staging.pk, net_dev.pk]
    assert {r["stack"] for r in rows} == {"network"}
    rows = _results(client.get("/api/v1/deployments/?stack=app"))
    assert [r["id"] for r in rows] == [app_staging.pk, app_dev.pk]
    assert {r["stack"] for r in rows} == {"app"}
    assert [r["ticket"] for r in rows] == [app_staging.ticket_id, app_dev.ticket_id]
    # With the environment: one stack's history there.
    rows = _results(client.get("/api/v1/deployments/?stack=app&environment=dev"))
    assert [r["id"] for r in rows] == [app_dev.pk]
    # Empty: every stack; a stack of no deployment: none.
    rows = _results(client.get("/api/v1/deployments/?stack="))
    assert [r["id"] for r in rows] == [
        default_dev.pk,
        app_staging.pk,
        net_staging.pk,
        app_dev.pk,
        net_dev.pk,
    ]
    assert _results(client.get("/api/v1/deployments/?stack=nope")) == []
    response = client.get("/api/v1/deployments/?stack=Not%20a%20name")
    assert response.status_code == 400 and response.json()["detail"].startswith("stack")


def _check(deployment: Deployment, status: str, minutes_ago: int) -> DriftCheck:
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return DriftCheck.objects.create(
        environment=deployment.environment,
        stack=deployment.stack,
        deployment=deployment,
        commit_sha=deployment.commit_sha,
        status=status,
        exit_code=2 if status == DriftStatus.DRIFTED else 0,
        summary={"add": 1, "change": 0, "destroy": 0, "resources": []}
        if status == DriftStatus.DRIFTED
        else {},
        started_at=started,
        finished_at=started + dt.timedelta(seconds=30),
    )


def test_the_drift_reports_of_each_stack(devops_lead: User, lead: User) -> None:
    network, app = sample_stacks(devops_lead)
    net_dev, app_dev = _deploy(network, "dev", 60), _deploy(app, "dev", 60)
    net_old = _check(net_dev, DriftStatus.NO_DRIFT, 30)
    app_drifted = _check(app_dev, DriftStatus.DRIFTED, 20)
    net_new = _check(net_dev, DriftStatus.DRIFTED, 10)
    _check(_deploy(app, "staging", 60), DriftStatus.NO_DRIFT, 5)  # another environment
    client = api_for(lead)
    rows = _results(client.get("/api/v1/environments/dev/drift/?stack=network"))
    assert [(r["id"], r["stack"]) for r in rows] == [
        (net_new.pk, "network"),
        (net_old.pk, "network"),
    ]
    assert rows[0]["deployment"] == net_dev.pk and rows[0]["drifted"] is True
    rows = _results(client.get("/api/v1/environments/dev/drift/?stack=app"))
    assert [(r["id"], r["stack"], r["deployment"]) for r in rows] == [
        (app_drifted.pk, "app", app_dev.pk)
    ]
    assert rows[0]["summary"]["add"] == 1
    rows = _results(client.get("/api/v1/environments/dev/drift/?stack="))
    assert [r["id"] for r in rows] == [net_new.pk, app_drifted.pk, net_old.pk]
    assert _results(client.get("/api/v1/environments/dev/drift/?stack=default")) == []
    response = client.get("/api/v1/environments/dev/drift/?stack=Bad!")
    assert response.status_code == 400 and response.json()["detail"].startswith("stack")
    # Whoever may not see prod gets 404 there, stack or not.
    assert client.get("/api/v1/environments/prod/drift/?stack=app").status_code == 404
