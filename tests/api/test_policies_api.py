"""POST /api/v1/policies/evaluate/: a dry run of the policies on a stored plan the caller
can see; nothing recorded."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from deployments.models import AuditEvent, PolicyResult
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory
from tests.helpers.policies import aws_plan, change, evaluated
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db

UNTAGGED = aws_plan(change("aws_sqs_queue.jobs", "aws_sqs_queue", ["create"], {"tags": None}))


def test_a_dry_run_evaluates_again_and_records_nothing(
    author: User, outsider: User, developer: User
) -> None:
    ticket = evaluated(awaiting("dev", author), UNTAGGED)
    results = PolicyResult.objects.count()
    events = AuditEvent.objects.count()
    response = api_for(developer).post(
        "/api/v1/policies/evaluate/", {"run": ticket.current_plan_id}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["plan_run"] == ticket.current_plan_id
    assert body["status"] == "blocked"
    tags = next(r for r in body["results"] if r["policy"] == "tags")
    assert tags["outcome"] == "fail" and tags["source"] == "repo"
    assert tags["messages"][0].startswith("aws_sqs_queue.jobs lacks the tags costcenter")
    assert PolicyResult.objects.count() == results
    assert AuditEvent.objects.count() == events
    # Outside the caller's scope: no such run.
    hidden = api_for(outsider).post(
        "/api/v1/policies/evaluate/", {"run": ticket.current_plan_id}, format="json"
    )
    assert hidden.status_code == 404
    bad = api_for(developer).post("/api/v1/policies/evaluate/", {"run": "x"}, format="json")
    assert bad.status_code == 400 and "detail" in bad.json()


def test_a_plan_without_a_stored_document_is_refused(author: User) -> None:
    ticket = awaiting("dev", author)
    response = api_for(author).post(
        "/api/v1/policies/evaluate/", {"run": ticket.current_plan_id}, format="json"
    )
    assert response.status_code == 409
    assert "kept no plan document" in response.json()["detail"]
    apply_run = RunFactory(ticket=ticket, kind="apply", plan=ticket.current_plan)
    response = api_for(author).post(
        "/api/v1/policies/evaluate/", {"run": apply_run.pk}, format="json"
    )
    assert response.status_code == 409
