"""In Chromium: a developer files a prod ticket through the form (the questionnaire appears
only for prod), and a Tech Lead sees the scored risk, its reasons, the blast radius and the
rollback plan with the last known good commit next to the approve button."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.browser import sign_in
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.risk import destructive_plan

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


@pytest.fixture
def context_page(chromium: Browser) -> Iterator[Any]:
    contexts: list[Any] = []

    def new() -> Page:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield new
    for context in contexts:
        context.close()


def test_prod_risk_is_filed_in_the_form_and_shown_where_the_approver_decides(
    author: User,
    tech_lead: User,
    infra_repo: Any,
    live_server: Any,
    context_page: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    prod = Environment.objects.get(name="prod")
    earlier = TicketFactory(environment=prod, status=TicketStatus.COMPLETED)
    DeploymentFactory(ticket=earlier, finished_at=timezone.now() - dt.timedelta(days=2))
    base = live_server.url

    dev = context_page()
    sign_in(dev, base, "alice")
    dev.goto(f"{base}/tickets/new/")
    details = dev.locator("#change-details")
    dev.get_by_label("Environment").select_option("dev")
    expect(details).to_be_hidden()
    dev.get_by_label("Environment").select_option("prod")
    expect(details).to_be_visible()
    dev.get_by_label("Title").fill("Bigger prod database")
    dev.get_by_label("Description").fill("db.r6g.2xlarge for the campaign")
    dev.get_by_label("Pull request URL").fill("https://git.example.com/infra/pull/42")
    dev.get_by_label("Impact").select_option("medium")
    dev.get_by_role("button", name="File ticket and plan").click()
    # Inline errors, field by field.
    expect(dev.locator(".field.has-error")).to_contain_text(
        ["Choose how likely it is to go wrong."]
    )
    dev.get_by_label("Likelihood").select_option("low")
    dev.get_by_label("Risk summary").fill("The database restarts once.")
    dev.get_by_label("Downtime expected").check()
    dev.get_by_label("Rollback steps").fill("Deploy the last known good commit again.")
    dev.get_by_label("Expected rollback time (minutes)").fill("20")
    dev.get_by_label("Data considerations").fill("No schema change.")
    dev.get_by_role("button", name="File ticket and plan").click()
    expect(dev.locator("h1")).to_contain_text("Bigger prod database")

    ticket = Ticket.objects.get(title="Bigger prod database")
    ticket.status = TicketStatus.AWAITING_APPROVAL
    ticket.save()
    destructive_plan(ticket)  # its plan replaces module.database…, as the worker scores it

    lead = context_page()
    sign_in(lead, base, "tess")
    lead.goto(f"{base}/tickets/{ticket.pk}/")
    risk = lead.locator("#risk")
    expect(lead.locator("#risk-level")).to_have_text("high")
    expect(lead.locator("#risk-reasons")).to_contain_text(
        "high: replaces module.database.aws_db_instance.main (database): an RDS database"
    )
    expect(lead.locator("#blast-items")).to_contain_text("holds data: an RDS database")
    expect(lead.locator("#risk-note")).to_contain_text("The assessed risk is high, so this")
    expect(lead.locator("#blast-radius")).to_contain_text("database")
    expect(lead.locator("#risk-summary")).to_contain_text("The database restarts once.")
    expect(lead.locator("#rollback-steps")).to_contain_text("Deploy the last known good")
    expect(lead.locator("#rollback-facts")).to_contain_text("20 minutes")
    expect(lead.locator("#last-known-good")).to_contain_text(earlier.commit_sha[:12])
    expect(lead.locator("#risk-pr")).to_contain_text("https://git.example.com/infra/pull/42")
    expect(lead.locator("#still-needed")).to_contain_text("Tech Lead")
    approve = lead.locator("#approve-form")
    expect(approve).to_be_visible()
    risk_box, approve_box = risk.bounding_box(), approve.bounding_box()
    assert risk_box and approve_box and risk_box["y"] < approve_box["y"]
    lead.screenshot(path="/tmp/ccp-browser-risk.png", full_page=True)
