"""With the real Terraform binary on the sample stack: a plan keeps, per resource it
lists, the attributes before → after, and the commit's message and author; the database
password (a sensitive variable) is never among them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deployments import selectors
from deployments.terraform import diff
from tests.helpers.flow import drain, file_dev

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

PASSWORD = "dev-not-a-real-password-1"  # sample_stack/terraform/environments/dev


def test_a_real_plan_keeps_masked_diffs_and_the_commit(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    ticket = drain(file_dev(author))
    plan = ticket.runs.order_by("id").first()
    assert plan is not None, ticket.status_reason
    assert plan.summary.get("add") == 24, (
        ticket.status,
        ticket.status_reason,
        plan.error,
        plan.summary,
    )
    summary = plan.summary
    assert len(summary["diffs"]) == len(summary["resources"]) == 24
    assert PASSWORD not in json.dumps(summary)
    rows = [row for d in summary["diffs"] for row in d["rows"]]
    assert rows and all(row["before"] is None for row in rows)  # everything is created
    assert any(row["after"] == diff.UNKNOWN for row in rows)
    assert any(row["after"] == diff.SENSITIVE for row in rows)
    assert summary["commit"]["message"] and summary["commit"]["author"]
    review = selectors.plan_review(plan)
    assert review is not None and review.has_diffs
    assert [a for a, _, _ in review.counts] == ["create"]
