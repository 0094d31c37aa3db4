"""Policy results on the ticket page in a real Chromium: failed ones first with their
messages and who may override; the approve panel says what the override needs; a DevOps
Lead overrides with a reason and the plan may be approved."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread (see test_browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from deployments.models import AuditEvent, PolicyOverride
from tests.helpers.browser import sign_in
from tests.helpers.policies import aws_plan, change, evaluated
from tests.helpers.tickets import awaiting

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]

TAGS = {"Project": "media", "Environment": "prod", "Owner": "platform", "CostCenter": "media-prod"}
DESTROY_DATABASE = aws_plan(
    change("aws_db_instance.main", "aws_db_instance", ["delete"], None),
    change("aws_s3_bucket.media", "aws_s3_bucket", ["create"], {"acl": "private", "tags": TAGS}),
)


def test_a_devops_lead_overrides_a_soft_failure_on_the_page(
    live_server: Any, page: Page, author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = evaluated(awaiting("prod", author), DESTROY_DATABASE)
    base = live_server.url

    sign_in(page, base, "tess")
    page.goto(f"{base}/tickets/{ticket.pk}/")
    section = page.locator("#policies")
    expect(page.locator("#policy-status")).to_have_text("override needed")
    first = section.locator("tbody tr").first
    expect(first).to_have_attribute("id", "policy-data_protection")
    expect(first).to_contain_text(
        "aws_db_instance.main (aws_db_instance) would be destroyed: it holds data"
    )
    expect(first).to_contain_text("Needs an override by a DevOps Lead")
    expect(page.locator("#policy-tags")).to_have_attribute("data-outcome", "pass")
    expect(section.locator(".policy-override-form")).to_have_count(0)  # not tess's to give
    expect(page.locator(".policy-need")).to_contain_text(
        "Policy data_protection needs an override by a DevOps Lead"
    )
    expect(page.locator("#approve-why")).to_contain_text("the plan needs a policy override")
    expect(page.locator("#approve-form")).to_have_count(0)

    page.context.clear_cookies()
    sign_in(page, base, "otto")
    page.goto(f"{base}/tickets/{ticket.pk}/")
    form = page.locator("#policy-data_protection .policy-override-form")
    form.locator("input[name=reason]").fill("moved to Aurora; final snapshot taken")
    form.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("Policy data_protection overridden")
    expect(page.locator("#policy-status")).to_have_text("warnings")
    expect(page.locator("#policy-data_protection")).to_contain_text(
        "Overridden by otto (devops_lead)"
    )
    expect(page.locator("#policy-data_protection")).to_contain_text(
        "moved to Aurora; final snapshot taken"
    )
    expect(page.locator(".policy-need")).to_have_count(0)
    expect(page.locator("#approve-form")).to_have_count(1)
    override = PolicyOverride.objects.get()
    assert override.plan_sha256 == ticket.current_plan.plan_sha256
    assert AuditEvent.objects.filter(action="policy.override", ticket=ticket).exists()
