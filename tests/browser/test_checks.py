"""CI checks on the ticket page in a real Chromium: staging requires fmt and plan; while plan
has failed the lead sees why they cannot approve, and once CI reports it passed they can."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread (see test_browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from deployments import services
from deployments.models import Environment, Ticket
from tests.helpers.browser import sign_in
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def report(ticket: Ticket, author: User, name: str, status: str, summary: str) -> None:
    services.check_record(
        ticket_id=ticket.pk,
        actor=author,
        data=services.CheckInput(
            name=name, status=status, summary=summary, url="https://ci.example.com/runs/9"
        ),
    )


def test_required_checks_on_the_ticket_page(
    live_server: Any,
    page: Page,
    author: User,
    lead: User,
) -> None:
    staging = Environment.objects.get(name="staging")
    staging.required_checks = ["fmt", "plan"]
    staging.save()
    ticket = awaiting("staging", author)
    report(ticket, author, "fmt", "passed", "terraform fmt -check: clean")
    report(ticket, author, "plan", "failed", "Error: Invalid reference")
    report(ticket, author, "security_scan", "passed", "checkov: 12 passed")

    base = live_server.url
    sign_in(page, base, "lena")
    page.goto(f"{base}/tickets/{ticket.pk}/")
    checks = page.locator("#checks")
    expect(checks).to_contain_text("staging needs fmt, plan to have passed before approval")
    expect(page.locator("#check-fmt")).to_have_attribute("data-status", "passed")
    expect(page.locator("#check-plan")).to_have_attribute("data-status", "failed")
    expect(page.locator("#check-plan")).to_contain_text("Error: Invalid reference")
    expect(page.locator("#check-security_scan")).to_contain_text("checkov: 12 passed")
    expect(page.locator("#check-plan a")).to_have_attribute("href", "https://ci.example.com/runs/9")
    expect(page.locator("#approve-why")).to_contain_text("failed: plan")
    expect(page.locator("#approve-form")).to_have_count(0)

    report(ticket, author, "plan", "passed", "Plan: 1 to add, 0 to change, 0 to destroy.")
    page.reload()
    expect(page.locator("#check-plan")).to_have_attribute("data-status", "passed")
    expect(page.locator("#check-plan")).to_contain_text("1 earlier report")
    page.locator("#approve-form button").click()
    expect(page.locator("#ticket-status")).to_have_attribute("data-status", "approved")
    assert Ticket.objects.get(pk=ticket.pk).approvals.get().approver == lead
