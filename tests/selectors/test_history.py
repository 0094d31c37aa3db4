"""Deployment history: GET /api/v1/deployments/ and /environments/<name>/history/."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Approval, Deployment, Environment
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.django_db


def env(name: str) -> Environment:
    return Environment.objects.get(name=name)


def deployed(name: str, author: User, approver: User | None = None, **extra: Any) -> Deployment:
    ticket = TicketFactory(environment=env(name), author=author, status="completed")
    extra.setdefault("started_at", timezone.now() - dt.timedelta(minutes=4))
    deployment = DeploymentFactory(ticket=ticket, plan_sha256="ab" * 32, **extra)
    if approver is not None:
        plan = deployment.run.plan
        Approval.objects.create(
            ticket=ticket,
            approver=approver,
            role="tech_lead",
            held_roles=["tech_lead"],
            plan_run=plan,
            plan_sha256="cd" * 32,
        )
    return deployment


def test_history_lists_commit_ticket_approvers_times_outcome_and_the_plan(
    author: User, tech_lead: User, operations: User
) -> None:
    done = deployed("prod", author, tech_lead, deployed_by=operations)
    body = api_for(operations).get("/api/v1/deployments/?environment=prod").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == done.pk and row["commit_sha"] == done.commit_sha
    assert row["ticket"] == done.ticket_id and row["environment"] == "prod"
    assert row["approvers"] == [
        {"username": "tess", "role": "tech_lead", "approved_at": row["approvers"][0]["approved_at"]}
    ]
    assert row["deployed_by"] == "opal"
    assert row["duration_seconds"] == pytest.approx(240, abs=2)
    assert row["outcome"] == "succeeded" and row["rolled_back"] is False
    assert row["plan"] == {
        "id": done.run.plan_id,
        "url": f"/api/v1/runs/{done.run.plan_id}/",
        "plan_sha256": "ab" * 32,
    }
    # The plan link is a real endpoint the same person may read.
    assert api_for(operations).get(row["plan"]["url"]).status_code == 200


def test_history_filters_by_outcome_and_since(author: User, operations: User) -> None:
    old = deployed("staging", author, finished_at=timezone.now() - dt.timedelta(days=10))
    failed = deployed("staging", author, outcome="failed")
    good = deployed("dev", author)
    client = api_for(operations)
    ids = [r["id"] for r in client.get("/api/v1/deployments/").json()["results"]]
    assert set(ids) == {old.pk, failed.pk, good.pk}
    assert [
        r["id"] for r in client.get("/api/v1/deployments/?outcome=failed").json()["results"]
    ] == [failed.pk]
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    recent = client.get("/api/v1/deployments/", {"environment": "staging", "since": since})
    assert [r["id"] for r in recent.json()["results"]] == [failed.pk]


@pytest.mark.parametrize(
    "query",
    [
        "outcome=maybe",
        "since=yesterday",
        "since=2026-13-01T00:00:00",
        "since=",  # the schema types it a date-time: blank is not one (schemathesis)
        "since=0001-01-01T00:10:00%2B23:31",  # before year 1 once in UTC
        "limit=0",
        "limit=x",
        "environment=%00",
        f"environment={'p' * 65}",
    ],
)
def test_history_bad_filters_are_400_with_detail(query: str, operations: User) -> None:
    response = api_for(operations).get(f"/api/v1/deployments/?{query}")
    assert response.status_code == 400 and response.json()["detail"]


def test_prod_history_is_only_for_those_who_see_prod(
    author: User, developer: User, qa: User, operations: User
) -> None:
    deployed("prod", author)
    dev = deployed("dev", author)
    for user in (developer, qa):
        client = api_for(user)
        assert client.get("/api/v1/deployments/?environment=prod").status_code == 404
        assert [r["id"] for r in client.get("/api/v1/deployments/").json()["results"]] == [dev.pk]
        assert signed_in(user).get("/environments/prod/history/").status_code == 404
    assert signed_in(developer).get("/environments/nope/history/").status_code == 404
    assert api_for(developer).get("/api/v1/deployments/?environment=nope").status_code == 404
    assert api_for(operations).get("/api/v1/deployments/?environment=prod").json()["count"] == 1


def test_history_page_shows_the_deployments_and_paginates(
    author: User, tech_lead: User, operations: User
) -> None:
    rolled = deployed("prod", author, tech_lead, rolled_back_at=timezone.now())
    page = signed_in(operations).get("/environments/prod/history/").content.decode()
    assert f"<code>{rolled.commit_sha[:10]}</code>" in page
    assert "tess" in page and "rolled back" in page
    assert f'href="/runs/{rolled.run.plan_id}/"' in page
    for _ in range(50):
        deployed("prod", author)
    first = signed_in(operations).get("/environments/prod/history/").content.decode()
    assert "page 1 of 2" in first and "?page=2" in first
    second = signed_in(operations).get("/environments/prod/history/?page=2").content.decode()
    assert f"<code>{rolled.commit_sha[:10]}</code>" in second  # the oldest, on the last page
    empty = signed_in(operations).get("/environments/staging/history/").content.decode()
    assert "Nothing has been deployed to staging yet." in empty


def test_environments_page_links_the_history(developer: User, operations: User) -> None:
    assert (
        "/environments/prod/history/"
        in signed_in(operations).get("/environments/").content.decode()
    )
    page = signed_in(developer).get("/environments/").content.decode()
    assert "/environments/dev/history/" in page and "/environments/prod/history/" not in page


def _fill(n: int, author: User, approver: User) -> None:
    for _ in range(n):
        deployed("prod", author, approver)


def _count(fetch: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = fetch()
    assert response.status_code == 200
    return len(ctx)


@pytest.mark.parametrize(
    "path", ["/environments/prod/history/", "/api/v1/deployments/?environment=prod"]
)
def test_history_query_budget(
    path: str, author: User, tech_lead: User, operations: User, django_assert_max_num_queries: Any
) -> None:
    client: Any = signed_in(operations) if path.startswith("/env") else api_for(operations)
    client.get(path)
    _fill(3, author, tech_lead)
    small = _count(lambda: client.get(path))
    _fill(17, author, tech_lead)
    with django_assert_max_num_queries(10):
        response = client.get(path)
    assert response.status_code == 200 and _count(lambda: client.get(path)) == small
