"""In the browser: operations schedules an approved prod ticket for the next window in one
click, then finds it on the change calendar (no JavaScript needed for either)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from deployments.choices import TicketStatus
from deployments.models import Ticket
from tests.helpers.browser import sign_in
from tests.helpers.tickets import approved

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]

OUTSIDE_WINDOW = "2026-11-24 12:00:00+00:00"  # Tuesday 07:00 in New York


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_ops_schedules_for_the_next_window_in_one_click_and_sees_it_on_the_calendar(
    chromium: Browser,
    live_server: Any,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    javascript: bool,
) -> None:
    base = live_server.url
    with time_machine.travel(OUTSIDE_WINDOW, tick=True):
        ticket = approved("prod", author, tech_lead, devops_lead)
        context = chromium.new_context(
            viewport={"width": 1280, "height": 900},
            java_script_enabled=javascript,
            timezone_id="Asia/Kolkata",
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            sign_in(page, base, operations.username)
            if javascript:  # static/timezone.js sends the browser's zone once
                expect(page.locator("#tz-guess-form")).to_have_count(0)
            page.goto(f"{base}/tickets/{ticket.pk}/")
            expect(page.locator("#ticket-status")).to_have_text("Approved")
            button = page.locator("#schedule-next-button")
            expect(button).to_have_text(
                "Schedule for the next window (Thu 26 Nov 02:00 EST (07:00 UTC))"
            )
            button.click()
            expect(page).to_have_url(f"{base}/tickets/{ticket.pk}/")
            expect(page.locator(".messages")).to_contain_text(
                "Scheduled for Thu 26 Nov 02:00 EST (07:00 UTC): it starts by itself in the window."
            )
            expect(page.locator("#ticket-status")).to_have_text("Scheduled")
            expect(page.locator("#scheduled-for")).to_contain_text(
                "Scheduled for Thu 26 Nov 02:00 EST (07:00 UTC) in the change window"
            )
            page.get_by_role("navigation").get_by_role("link", name="Calendar").click()
            expect(page).to_have_url(f"{base}/calendar/")
            thursday = page.locator('td[data-date="2026-11-26"]')
            entry = thursday.locator("li[data-kind=scheduled]")
            expect(entry).to_contain_text(f"#{ticket.pk} {ticket.title}")
            # One zone on the calendar, the viewer's (the browser's with JavaScript, else
            # UTC), UTC on hover; the window's rule, in its own zone, on hover too.
            local = "2026-11-26 12:30 IST" if javascript else "2026-11-26 07:00 UTC"
            expect(entry).to_contain_text(f"scheduled {local}")
            expect(entry.locator("time")).to_have_attribute("title", "2026-11-26 07:00 UTC")
            window = thursday.locator("li[data-kind=window]")
            closes = "14:30 IST" if javascript else "09:00 UTC"
            expect(window).to_contain_text(f"{local} \u2013 {closes}")
            expect(window.locator(".cal-when")).to_have_attribute(
                "title", re.compile(r"^Thu 26 Nov 02:00 EST \(07:00 UTC\) . Thu 26 Nov 04:00 EST")
            )
            entry.get_by_role("link").click()
            expect(page).to_have_url(f"{base}/tickets/{ticket.pk}/")
            page.screenshot(
                path=f"/tmp/ccp-schedule-{'js' if javascript else 'nojs'}.png", full_page=True
            )
        finally:
            context.close()
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.status == TicketStatus.SCHEDULED
