"""In a real Chromium: a DevOps Lead whose browser is in India sees times in IST (the
browser's zone, sent once), sees the emergency banner, and completes the post-deployment
review with the form on the ticket page."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments.choices import ChangeType, RunKind, TicketStatus
from deployments.models import Environment, FollowUp, UserPreference
from tests.helpers.browser import sign_in
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_devops_lead_completes_the_emergency_review_in_the_browser(
    chromium: Browser, live_server: Any, devops_lead: User
) -> None:
    deployed = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    ticket = TicketFactory(
        title="Hotfix: login outage",
        environment=Environment.objects.get(name="prod"),
        change_type=ChangeType.EMERGENCY,
        status=TicketStatus.MONITORING,
        description="login is down for every customer",
        deployed_at=deployed,
    )
    plan = RunFactory(ticket=ticket, kind=RunKind.PLAN)
    apply = RunFactory(ticket=ticket, kind=RunKind.APPLY, plan=plan, finished_at=deployed)
    review = FollowUp.objects.create(
        ticket=ticket,
        kind="post_deployment_review",
        deployment_run=apply,
        due_at=deployed + dt.timedelta(hours=24),
    )

    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Asia/Kolkata"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        base = live_server.url
        sign_in(page, base, "otto")
        # static/timezone.js sent the browser's zone once.
        expect(page.locator("#tz-guess-form")).to_have_count(0, timeout=15_000)
        # (Chromium names the zone by its older alias.)
        assert UserPreference.objects.get(user=devops_lead).timezone in {
            "Asia/Kolkata",
            "Asia/Calcutta",
        }

        page.goto(f"{base}/tickets/{ticket.pk}/")
        banner = page.locator("#emergency-banner")
        expect(banner).to_contain_text("Emergency change: bypasses the change window and freezes")
        expect(banner).to_contain_text("login is down for every customer")
        due_local = (review.due_at + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
        section = page.locator(f"#follow-up-{review.pk}")
        expect(section).to_contain_text(f"Due {due_local} IST")
        form = page.locator(f"#follow-up-{review.pk}-form")
        form.locator("textarea[name=what_happened]").fill("hotfix rolled out at 03:10")
        form.locator("textarea[name=impact]").fill("logins failed for 40 minutes")
        form.locator("textarea[name=root_cause]").fill("expired certificate")
        form.locator("textarea[name=actions]").fill("automate renewal — otto")
        form.locator("button").click()

        expect(page.locator(".messages")).to_contain_text("Post-deployment review completed.")
        expect(section).to_contain_text("completed by otto")
        expect(section).to_contain_text("expired certificate")
        expect(page.locator(f"#follow-up-{review.pk}-form")).to_have_count(0)
        page.screenshot(path="/tmp/ccp-browser-review.png", full_page=True)

        # The settings page, from the header: choose New York; the page follows.
        page.locator("#nav-settings").click()
        expect(page.locator("#current-timezone")).to_contain_text("Asia/")
        page.locator("select[name=timezone]").select_option("America/New_York")
        page.locator("#preferences-form button").click()
        expect(page.locator(".messages")).to_contain_text("Times are now shown in America/New_York")
        page.goto(f"{base}/tickets/{ticket.pk}/")
        due_ny = review.due_at.astimezone(ZoneInfo("America/New_York"))
        expect(section).to_contain_text(f"Due {due_ny:%Y-%m-%d %H:%M %Z}")
        # A later browser guess never overrides the choice.
        page.goto(f"{base}/")
        expect(page.locator("#tz-guess-form")).to_have_count(0)
    finally:
        context.close()
    review.refresh_from_db()
    assert review.completed_by == devops_lead and review.actions == "automate renewal — otto"
