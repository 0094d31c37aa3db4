"""The ticket detail's review fields: the timeline and the plan's changes, attributes
before → after, sensitive values masked (the same view model as the page)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from deployments.terraform import diff
from tests.helpers.api import api_for
from tests.helpers.review import SECRET, ticket_under_review

pytestmark = pytest.mark.django_db


def test_the_detail_has_the_timeline_and_the_plan_changes(author: User, tech_lead: User) -> None:
    ticket = ticket_under_review(author)
    response = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert SECRET not in json.dumps(body)
    steps = {s["key"]: s for s in body["timeline"]}
    assert steps["planned"]["state"] == "done" and steps["planned"]["seconds"] == 42.0
    assert steps["approvals"]["state"] == "current"
    changes = body["plan_changes"]
    assert [c["action"] for c in changes][:2] == ["destroy", "replace"]
    assert all(c["destructive"] for c in changes[:2])
    db = changes[1]
    assert db["attributes"][0] == {
        "path": "engine_version",
        "before": '"14.9"',
        "after": '"16.3"',
        "forces_replacement": True,
    }
    assert {"path": "id", "before": None, "after": diff.UNKNOWN, "forces_replacement": False} in (
        db["attributes"]
    )
