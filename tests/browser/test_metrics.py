"""In the browser: a Tech Lead opens the metrics from the header, reads prod's figures and
its server-drawn charts, and switches environment and period, with no CSP violation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments.choices import TicketStatus
from deployments.models import Environment
from tests.helpers.browser import sign_in
from tests.helpers.csp import Watcher
from tests.helpers.factories import DeploymentFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_reads_the_metrics_and_switches_environment_and_period(
    chromium: Browser, live_server: Any, tech_lead: User
) -> None:
    now = timezone.now()
    prod = Environment.objects.get(name="prod")
    # Prod: three deployments in the last days, one of them failed (failure rate 1/3).
    for days_ago, outcome in ((3, "succeeded"), (2, "failed"), (1, "succeeded")):
        with time_machine.travel(now - dt.timedelta(days=days_ago, hours=5)):
            ticket = TicketFactory(environment=prod, status=TicketStatus.COMPLETED)
        DeploymentFactory(
            ticket=ticket, finished_at=now - dt.timedelta(days=days_ago), outcome=outcome
        )
    base = live_server.url
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    watcher = Watcher(page)
    try:
        sign_in(page, base, tech_lead.username)
        page.get_by_role("navigation").get_by_role("link", name="Metrics").click()
        expect(page).to_have_url(f"{base}/metrics/")
        expect(page.locator("select[name=environment]")).to_have_value("prod")
        cards = page.locator("#metric-cards")
        expect(cards).to_contain_text("33.3 %")
        expect(cards).to_contain_text("1 of 3 deployments failed")
        expect(cards).to_contain_text("5 h")  # lead time: each ticket filed 5 h before
        # The bars are real, laid-out SVG: visible, with height, a failure stacked in red.
        bars = page.locator("#chart-daily rect.bar-ok")
        expect(bars).to_have_count(30)
        failed = page.locator("#chart-daily rect.bar-bad")
        expect(failed).to_have_count(1)
        box = failed.bounding_box()
        assert box is not None and box["height"] > 10
        # Switch to dev over 7 days: no deployments there, and the page says so.
        page.locator("select[name=environment]").select_option("dev")
        page.locator("select[name=days]").select_option("7")
        page.locator("#metrics-filters button[type=submit]").click()
        expect(page).to_have_url(f"{base}/metrics/?environment=dev&days=7")
        expect(page.locator(".empty").first).to_contain_text(
            "No deployment of dev finished in the last 7 days"
        )
        expect(page.locator("#metrics-table")).to_contain_text("prod")
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__cspViolations") + watcher.console
        assert violations == []
        page.screenshot(path="/tmp/ccp-metrics.png", full_page=True)
    finally:
        context.close()
