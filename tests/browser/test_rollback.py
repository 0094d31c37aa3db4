"""In a real Chromium: operations rolls a prod deploy back from its ticket page (issue 9)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.browser import sign_in
from tests.helpers.factories import DeploymentFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operations_rolls_back_from_the_ticket_page(
    chromium: Browser, live_server: Any, operations: User, author: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)  # no worker here
    prod = Environment.objects.get(name="prod")
    now = timezone.now().replace(microsecond=0)
    good = DeploymentFactory(
        ticket=TicketFactory(environment=prod, author=author, status=TicketStatus.COMPLETED),
        finished_at=now - dt.timedelta(days=2),
    )
    bad_ticket = TicketFactory(
        title="Bigger app servers",
        environment=prod,
        author=author,
        status=TicketStatus.MONITORING,
        deployed_at=now - dt.timedelta(minutes=15),
    )
    DeploymentFactory(ticket=bad_ticket, finished_at=now - dt.timedelta(minutes=15))

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        base = live_server.url
        sign_in(page, base, "opal")
        page.goto(f"{base}/tickets/{bad_ticket.pk}/")
        section = page.locator("#rollback")
        expect(section).to_contain_text(good.commit_sha[:12])
        expect(page.get_by_text("Cancel ticket")).to_have_count(0)  # monitoring: no cancel
        page.locator("#rollback-button").click()

        # The confirm step names the target; nothing is filed yet.
        expect(page.locator("#rollback-target-commit")).to_have_text(good.commit_sha)
        expect(page.locator("#rollback-target")).to_contain_text(f"ticket #{good.ticket_id}")
        expect(page.locator("#rollback-mode")).to_contain_text("Immediate rollback")
        assert not Ticket.objects.filter(change_type="rollback").exists()
        page.locator("#rollback-confirm").click()

        rollback = Ticket.objects.get(change_type="rollback")
        expect(page).to_have_url(f"{base}/tickets/{rollback.pk}/")
        expect(page.locator(".messages")).to_contain_text(f"Rollback ticket #{rollback.pk} opened")
        expect(page.locator("#rollback-of")).to_contain_text(f"ticket #{bad_ticket.pk}")
        expect(page.locator("#rollback-of")).to_contain_text(good.commit_sha[:12])
        assert rollback.author == operations and rollback.commit_sha == good.commit_sha
        page.screenshot(path="/tmp/ccp-browser-rollback.png", full_page=True)
    finally:
        context.close()
