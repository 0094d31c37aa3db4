"""In a real Chromium: a Tech Lead signs in, lands on "what needs me", sees the prod ticket
waiting for them with how long it has waited, and clicks through to approve it.

The README's screenshot (docs/screenshots/home.png) is this page: ``UPDATE_SCREENSHOTS=1``
writes it there; otherwise it goes to the test's temporary directory."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments.models import Ticket
from tests.helpers.browser import sign_in
from tests.helpers.paths import ROOT
from tests.helpers.tickets import awaiting

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


def test_tech_lead_finds_the_waiting_ticket_on_home_and_opens_it_to_approve(
    chromium: Browser, live_server: Any, author: User, tech_lead: User, tmp_path: Path
) -> None:
    ticket = awaiting("prod", author, title="Add the read replica")
    Ticket.objects.filter(pk=ticket.pk).update(
        status_changed_at=timezone.now() - dt.timedelta(hours=2, minutes=30)
    )
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        base = live_server.url
        sign_in(page, base, "tess")  # lands on /, the home page
        expect(page.locator("h1")).to_have_text("What needs me")
        expect(page.locator("#queue-badge")).to_have_text("1")
        row = page.locator("#queue-approvals tr", has_text="Add the read replica")
        expect(row.locator("td.waited")).to_have_text("2 h 30 min")
        folder = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
        shot = folder / "home.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        row.get_by_role("link", name="Add the read replica").click()
        expect(page).to_have_url(f"{base}/tickets/{ticket.pk}/")
        expect(page.locator("#approve-form")).to_be_visible()
    finally:
        context.close()
