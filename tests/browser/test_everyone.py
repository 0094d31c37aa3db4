"""In a real Chromium, the parts of "works for everyone" beyond the layout: the calendar
opens on the next change window and its feed links are copyable (a read-only field and a
Copy button); the settings page finds a zone by searching; roles and check names read as
words, never as machine names."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments import selectors
from deployments.models import CheckResult, Environment
from tests.helpers.axe import DESKTOP, PHONE, horizontal_overflow
from tests.helpers.browser import sign_in
from tests.helpers.review import demo_users, ticket_under_review

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


def test_the_calendar_opens_on_the_next_window_with_copyable_feed_links(
    chromium: Browser, live_server: Any
) -> None:
    users = demo_users()
    opening = selectors.next_window_opening(users["techlead1"], timezone.now())
    assert opening is not None
    day = opening.astimezone(timezone.get_default_timezone()).date()
    for viewport in (DESKTOP, PHONE):
        context = chromium.new_context(viewport=viewport)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        page = context.new_page()
        try:
            sign_in(page, live_server.url, "techlead1")
            page.goto(f"{live_server.url}/calendar/")
            expect(page.locator("#cal-opening")).to_contain_text(day.isoformat())
            expect(page.locator(f'td[data-date="{day.isoformat()}"]')).to_have_count(1)
            page.locator("#feed-token-button").click()
            field = page.locator("#feed-prod")
            expect(field).to_have_attribute("readonly", "")
            url = field.input_value()
            assert url.startswith(live_server.url) and "/calendar/prod.ics?token=" in url
            page.locator('button[data-copy="feed-prod"]').click()
            expect(page.locator("#feeds .copy-status").nth(_index(page, "feed-prod"))).to_have_text(
                "Copied."
            )
            assert page.evaluate("() => navigator.clipboard.readText()") == url
            assert horizontal_overflow(page) == 0
        finally:
            context.close()


def _index(page: Any, field_id: str) -> int:
    ids = page.eval_on_selector_all("#feeds input.feed-url", "els => els.map(e => e.id)")
    return list(ids).index(field_id)


def test_a_zone_is_found_by_searching(chromium: Browser, live_server: Any) -> None:
    demo_users()
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "dev1")
        page.goto(f"{live_server.url}/settings/")
        select = page.locator("select[name=timezone]")
        expect(select.locator("optgroup").first).to_have_attribute("label", "Common zones")
        page.get_by_label("Find a zone").fill("kolk")
        expect(page.locator("#zone-search-count")).to_have_text("1 zone matches")
        expect(select).to_have_value("Asia/Kolkata")
        page.locator("#preferences-form button").click()
        expect(page.locator("#current-timezone")).to_have_text("Asia/Kolkata")
        page.get_by_label("Find a zone").fill("new york")
        expect(select).to_have_value("America/New_York")
        assert horizontal_overflow(page) == 0
    finally:
        context.close()


def test_roles_and_check_names_read_as_words(
    chromium: Browser, live_server: Any, settings: Any
) -> None:
    users = demo_users()
    prod = Environment.objects.get(name="prod")
    prod.required_checks = ["smoke_tests"]
    prod.save()
    ticket = ticket_under_review(users["dev1"])
    CheckResult.objects.create(
        ticket=ticket,
        name="smoke_tests",
        status="passed",
        summary="12 passed",
        reported_by=users["dev1"],
    )
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "techlead1")
        expect(page.locator("#who-name")).to_have_text("techlead1 · Tech Lead")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
        expect(page.locator("#checks")).to_contain_text("Smoke tests")
        expect(page.locator("#tl-checks")).to_contain_text("1 of 1 required checks passed")
        visible = page.locator("main").inner_text() + page.locator("header").inner_text()
        for raw in ("smoke_tests", "tech_lead", "devops_lead"):
            assert raw not in visible, raw
    finally:
        context.close()
