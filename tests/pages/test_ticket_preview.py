"""Issue 22: the new-ticket form previews the risk level and the approvals before filing,
by the server's own rules, and the prod form's errors are per field, in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments import policy
from deployments.models import Environment, Ticket
from deployments.selectors.preview import ticket_preview
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.django_db


def preview(client: Client, **query: str) -> Any:
    return client.get("/tickets/new/preview/", query)


def test_the_preview_of_a_prod_ticket_follows_the_answers(author: User) -> None:
    client = signed_in(author)
    low = preview(
        client,
        environment="prod",
        change_type="normal",
        risk_impact="low",
        risk_likelihood="low",
        risk_tested_in_staging="on",
    ).json()
    assert low["risk_level"] == "low"
    assert low["rule"] == "Tech Lead and DevOps Lead, two different people"
    assert low["approvals"] == 2
    assert any("may still raise the level" in n for n in low["notes"])
    high = preview(
        client, environment="prod", change_type="normal", risk_impact="high", risk_likelihood="high"
    ).json()
    assert high["risk_level"] == "high" and high["approvals"] == 3


def test_the_preview_is_the_rule_the_filed_ticket_gets(author: User) -> None:
    """The same code: a ticket built with the same answers gets the same rule."""
    env = Environment.objects.get(name="prod")
    answers = {"impact": "high", "likelihood": "high", "summary": "x"}
    shown = ticket_preview(
        author, environment="prod", change_type="normal", answers=answers, now=timezone.now()
    )
    scored = policy.risk.score({**answers, "tested_in_staging": False}, None)
    ticket = Ticket(environment=env, change_type="normal", risk={"level": scored.level})
    assert shown.rule == policy.rule_for(ticket, now=timezone.now()).describe()


def test_an_emergency_says_what_escalates_it_before_filing(author: User) -> None:
    client = signed_in(author)
    outage = preview(
        client,
        environment="prod",
        change_type="emergency",
        risk_impact="high",
        risk_likelihood="medium",
        risk_customer_facing="on",
    ).json()
    assert outage["approvals"] == 1 and outage["risk_level"] in ("medium", "high")
    assert any("escalates an emergency to" in n and "migrates data" in n for n in outage["notes"])
    migrating = preview(
        client,
        environment="prod",
        change_type="emergency",
        risk_impact="low",
        risk_likelihood="low",
        risk_data_migration="on",
    ).json()
    assert migrating["approvals"] == 2
    assert any("because it migrates data" in n for n in migrating["notes"])


def test_dev_needs_no_approval_and_no_questionnaire(author: User) -> None:
    body = preview(signed_in(author), environment="dev", change_type="normal").json()
    assert body["risk_level"] == "" and body["rule"] == "no approval required"


def test_the_preview_refuses_an_environment_the_person_may_not_file(outsider: User) -> None:
    response = preview(signed_in(outsider), environment="prod", change_type="normal")
    assert response.status_code == 400 and "environment" in response.json()["detail"]


def test_the_form_page_shows_the_preview_and_marks_required_fields(author: User) -> None:
    page = signed_in(author).get("/tickets/new/?environment=prod").content.decode()
    assert 'id="ticket-preview"' in page and "Tech Lead and DevOps Lead" in page
    assert "details-required" in page.split('id="ticket-form"')[0].rsplit("<form", 1)[1]
    assert page.count('class="is-required"') == 6  # title, environment, and prod's four
    assert page.count('class="is-required-prod"') == 1  # the description, in prod


def test_a_prod_ticket_without_details_gets_plain_errors_per_field(
    author: User, infra_repo: Path
) -> None:
    response = signed_in(author).post(
        "/tickets/new/", {"title": "Bigger DB", "environment": "prod", "change_type": "normal"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Ticket.objects.exists()
    for message in (
        "Describe the change: what it does and why.",
        "Choose the impact if this change goes wrong.",
        "Choose how likely it is to go wrong.",
        "Say what could go wrong and how you would notice.",
        "Write the steps that undo this change.",
    ):
        assert message in page
    assert "risk_assessment" not in page.split('id="ticket-form"')[1].split("</form>")[0]
    assert 'id="field-risk_impact"' in page
