"""In a real Chromium: operations sees the monitoring countdown tick (static/monitoring.js,
no inline script under the CSP) and signs a checklist item off on the ticket page."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments.choices import RunKind, TicketStatus
from deployments.models import ChecklistItem, Environment
from deployments.services import monitoring
from tests.helpers.browser import sign_in
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operations_signs_an_item_and_sees_the_countdown(
    chromium: Browser, live_server: Any, operations: User, author: User
) -> None:
    deployed = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=15)
    ticket = TicketFactory(
        title="Scale prod app servers",
        environment=Environment.objects.get(name="prod"),
        status=TicketStatus.MONITORING,
        author=author,
        deployed_at=deployed,
    )
    apply = RunFactory(
        ticket=ticket, kind=RunKind.APPLY, plan=RunFactory(ticket=ticket), finished_at=deployed
    )
    with transaction.atomic():
        monitoring.monitoring_start(ticket, apply)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        sign_in(page, live_server.url, "opal")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
        countdown = page.locator("#monitoring-countdown")
        expect(countdown).to_have_text(re.compile(r"^4[45]:\d\d$"))
        first = countdown.inner_text()
        # The script counts down: the text changes without a reload.
        expect(countdown).not_to_have_text(first, timeout=5_000)
        form = page.locator("#checklist-redis-responding-form")
        form.locator("input[name=note]").fill("redis-cli PING: PONG on all 3 nodes")
        form.locator("button").click()
        expect(page.locator("#checklist-redis-responding")).to_contain_text("signed by opal")
        expect(page.locator("#checklist-redis-responding")).to_contain_text("PONG on all 3 nodes")
        expect(page.locator("#complete-button")).to_be_disabled()
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        context.close()
    item = ChecklistItem.objects.get(ticket=ticket, key="redis-responding")
    assert item.signed_by == operations and not item.auto
