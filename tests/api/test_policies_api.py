"""POST /api/v1/policies/evaluate/: a dry run of the policies on a stored plan the caller
can see; nothing recorded."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from deployments.models import AuditEvent, PolicyOverride, PolicyResult
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


def test_an_override_retried_with_its_idempotency_key_is_given_once(
    author: User, devops_lead: User
) -> None:
    destroy = aws_plan(change("aws_db_instance.main", "aws_db_instance", ["delete"], None))
    ticket = evaluated(awaiting("prod", author), destroy)
    payload = {
        "policy": "data_protection",
        "plan_sha256": ticket.current_plan.plan_sha256,
        "reason": "the data moved",
    }
    url = f"/api/v1/tickets/{ticket.pk}/policy-overrides/"
    client = api_for(devops_lead)
    first = client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201, first.json()
    assert first.json() == again.json()
    assert PolicyOverride.objects.count() == 1
    assert AuditEvent.objects.filter(action="policy.override").count() == 1
