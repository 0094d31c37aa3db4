"""In a real Chromium: the API tokens page (create, shown once, use, revoke → 401) and the
API reference page (Swagger UI from our own static files, no CSP violation)."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread (see test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from deployments.models import ApiKey, AuditEvent
from tests.helpers.browser import sign_in
from tests.helpers.csp import Watcher

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def call_api(base: str, key: str, path: str = "/api/v1/tickets/") -> tuple[int, Any]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Token {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_user_creates_uses_and_revokes_an_api_token(
    author: User, live_server: Any, page: Page
) -> None:
    base = live_server.url
    sign_in(page, base, "alice")
    page.locator("header nav").get_by_role("link", name="API tokens").click()
    expect(page.locator("h1")).to_have_text("API tokens")
    expect(page.locator(".notice")).to_contain_text("no API tokens")
    page.locator("#new-token").click()
    page.locator("input[name=name]").fill("GitHub Actions")
    page.locator("select[name=scope]").select_option("ci")
    page.locator("input[name=expires_days]").fill("30")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("h1")).to_contain_text("created")
    key = page.locator("#new-key").input_value()
    row = ApiKey.objects.get(user=author)
    assert key.startswith(row.prefix) and row.scope == "ci" and row.expires_at is not None

    status, body = call_api(base, key)
    assert status == 200 and "results" in body

    # Shown once: the list shows the prefix, never the key, and now the last use.
    page.get_by_role("link", name="Back to your API tokens").click()
    table = page.locator("#token-table")
    expect(table).to_contain_text("GitHub Actions")
    expect(table).to_contain_text(row.prefix)
    expect(table.locator("tr[data-prefix] .state")).to_have_text("active")
    assert key not in page.content()
    assert "never" not in table.locator("tr[data-prefix] td").nth(5).inner_text()

    page.get_by_role("link", name="Revoke…").click()
    expect(page.locator("h1")).to_contain_text("Revoke API token")
    page.locator("#confirm-revoke").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(table.locator("tr[data-prefix] .state")).to_contain_text("revoked")

    status, body = call_api(base, key)
    assert status == 401 and "revoked" in body["detail"]
    actions = list(
        AuditEvent.objects.filter(action__startswith="account.api_key")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["account.api_key_create", "account.api_key_revoke"]


def test_the_api_link_opens_the_reference_without_csp_violations(
    author: User, live_server: Any, chromium: Browser
) -> None:
    base = live_server.url
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        watcher = Watcher(page)
        sign_in(page, base, "alice")
        page.locator("header nav").get_by_role("link", name="API", exact=True).click()
        page.wait_for_url(f"{base}/api/docs/")
        expect(page.locator("h1")).to_have_text("API reference")
        # Swagger UI rendered the operations from our own schema.
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/tickets/")
        expect(page.locator(".swagger-ui")).to_contain_text("Change Control Portal API")
        page.wait_for_load_state("networkidle")
        violations: list[str] = page.evaluate("window.__cspViolations") + watcher.console
        assert violations == []
        # Nothing from a CDN: every script and stylesheet came from this server.
        sources: list[str] = page.evaluate(
            "[...document.querySelectorAll('script[src], link[rel=stylesheet]')]"
            ".map(e => e.src || e.href)"
        )
        assert sources and all(s.startswith(base) for s in sources), sources
    finally:
        context.close()
