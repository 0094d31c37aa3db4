"""In a real Chromium: Operations finds a failed Slack message on the notification log (from
the header), retries it, and chooses which emails to get on the settings page."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from deployments.models import AuditEvent, UserPreference
from notifications.models import Notification
from tests.helpers.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operations_retries_a_failed_notification_and_sets_email_preferences(
    chromium: Browser, live_server: Any, operations: User, settings: Any
) -> None:
    settings.SLACK_WEBHOOK_URL = ""  # the retry is queued; sending it fails again, that's fine
    failed = Notification.objects.create(
        event="deploy.failed",
        channel="slack",
        address="webhook hooks.slack.com",
        subject="Deploy FAILED in staging: #7 resize cache",
        status="failed",
        attempts=5,
        last_error="HTTPError: HTTP Error 500: Internal Server Error",
    )
    Notification.objects.create(
        event="deploy.started", channel="slack", subject="Deploying", status="queued"
    )
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "favicon" not in (m.location or {}).get("url", "")
            else None
        ),
    )
    try:
        base = live_server.url
        sign_in(page, base, "opal")
        page.locator("nav >> text=Notifications").click()
        expect(page.locator("#notification-log")).to_contain_text("Deploying")
        page.locator("#notification-filter >> text=Failed only").click()
        row = page.locator(f"#notification-{failed.pk}")
        expect(row).to_contain_text("HTTP Error 500")
        expect(page.locator("#notification-log")).not_to_contain_text("Deploying")
        row.locator("button", has_text="Retry").click()
        expect(page.locator(".messages")).to_contain_text(
            f"Notification {failed.pk} (deploy.failed by slack) queued again."
        )

        page.locator("#nav-settings").click()
        form = page.locator("#email-preferences-form")
        form.get_by_label("Deploys (started, succeeded, failed").uncheck()
        form.locator("button").click()
        expect(page.locator(".messages")).to_contain_text("Email notification settings saved.")
        expect(form.get_by_label("Deploys (started, succeeded, failed")).not_to_be_checked()
        expect(form.get_by_label("Approvals (needs your approval")).to_be_checked()
        assert errors == []  # no CSP violation or script error on either page
    finally:
        context.close()
    assert AuditEvent.objects.filter(action="notification.retry", actor=operations).count() == 1
    assert UserPreference.objects.get(user=operations).email_opt_out == ["deploys"]
