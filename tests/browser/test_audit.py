"""In a real Chromium: operations finds the audit page from the header, filters it, pages
back, exports what it shows, and the page breaks no Content-Security-Policy rule."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread (see test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from playwright.sync_api import Browser, Page, expect

from deployments import services
from deployments.pages import audit as views_audit
from tests.helpers.browser import sign_in
from tests.helpers.csp import Watcher
from tests.helpers.factories import TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_operations_filters_pages_and_exports_the_audit_trail(
    operations: User, live_server: Any, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_audit, "PAGE_SIZE", 2)
    ticket = TicketFactory(title="Rotate the TLS certificate")
    with transaction.atomic():
        for i in range(3):
            services.audit_record(
                actor=operations, action="ticket.note", ticket=ticket, data={"i": i}
            )
    base = live_server.url
    watcher = Watcher(page)
    sign_in(page, base, "opal")
    page.locator("header nav").get_by_role("link", name="Audit").click()
    expect(page.locator("h1")).to_have_text("Audit trail")
    assert watcher.visit(page.url) == []  # no CSP violation

    page.locator("input[name=action]").fill("ticket.*")
    page.locator("input[name=ticket]").fill(str(ticket.pk))
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Rotate the TLS certificate")
    expect(rows.first.locator(".audit-data")).to_contain_text("2")
    page.locator("#audit-older").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".audit-data")).to_contain_text("0")

    with page.expect_download() as download:
        page.locator("#audit-export-jsonl").click()
    body = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.endswith(".jsonl")
    assert [json.loads(line)["data"]["i"] for line in body.splitlines()] == [2, 1, 0]
