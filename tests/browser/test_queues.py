"""Issue 22 in a real Chromium, at 1366 px and at 390 px (a phone): "what needs me" says
what each person can do now; the new-ticket form previews risk and approvals live and
gives plain per-field errors; an immediate rollback goes from approval to applying with
one lead; cancelling asks first; a stale scheduled ticket is re-planned keeping its slot."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from deployments.choices import RunKind, TicketStatus
from deployments.models import (
    Approval,
    ChecklistItem,
    Environment,
    MonitoringPeriod,
    PendingReschedule,
    TerraformRun,
    Ticket,
)
from deployments.services import schedules
from tests.helpers.browser import sign_in
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.tickets import approve, awaiting

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]

WIDTHS = [1366, 390]
OUTSIDE = "2026-11-30 12:00:00+00:00"  # Monday 07:00 in New York: prod's window is closed
SLOT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 03:00 EST: inside it


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def browser_page(chromium: Browser, width: int) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def immediate_rollback(author: User, lead: User) -> Ticket:
    ticket = awaiting(
        "prod",
        author,
        title="Roll back the cache resize",
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=timezone.now() + dt.timedelta(minutes=40),
    )
    return ticket


def test_operations_home_lists_what_they_can_do_now(
    browser_page: Page, live_server: Any, author: User, tech_lead: User, operations: User
) -> None:
    page = browser_page
    with time_machine.travel(OUTSIDE, tick=True):
        rollback = immediate_rollback(author, tech_lead)
        assert approve(tech_lead, rollback).status_code == 200
        monitored = TicketFactory(
            environment=Environment.objects.get(name="prod"),
            author=author,
            status=TicketStatus.MONITORING,
            title="Bigger database",
        )
        now = timezone.now()
        MonitoringPeriod.objects.create(
            ticket=monitored, started_at=now - dt.timedelta(minutes=10), ends_at=now
        )
        ChecklistItem.objects.create(ticket=monitored, key="db", label="Database healthy")
        sign_in(page, live_server.url, operations.username)
        deploys = page.locator("#queue-deploys")
        row = deploys.locator("tr", has_text="Roll back the cache resize")
        expect(row).to_contain_text("may deploy now, outside any window")
        expect(row).to_contain_text("deploy now")
        expect(row).not_to_contain_text("window opens")
        watch = page.locator("#queue-monitoring")
        expect(watch.locator("h2 .badge")).to_have_text("1")
        expect(watch.locator("tr", has_text="Bigger database")).to_contain_text(
            "1 to sign: Database healthy"
        )
        expect(page.locator("#queue-badge")).to_have_text("2")


def test_the_new_ticket_form_previews_approvals_and_explains_errors(
    browser_page: Page, live_server: Any, author: User
) -> None:
    page = browser_page
    base = live_server.url
    sign_in(page, base, author.username)
    page.goto(f"{base}/tickets/new/")
    page.locator("select[name=environment]").select_option("prod")
    rule = page.locator("#preview-rule")
    expect(rule).to_contain_text("Tech Lead and DevOps Lead, two different people")
    page.locator("select[name=change_type]").select_option("emergency")
    expect(rule).not_to_contain_text("two different people")
    notes = page.locator("#preview-notes")
    expect(notes).to_contain_text("escalates an emergency to")
    expect(notes).to_contain_text("when it migrates data")
    page.locator("input[name=risk_data_migration]").check()
    expect(rule).to_contain_text("Tech Lead and DevOps Lead, two different people")
    expect(notes).to_contain_text("because it migrates data")
    star = page.evaluate(
        """() => [
          getComputedStyle(document.querySelector("#field-risk_summary label"), "::after").content,
          getComputedStyle(document.querySelector("#field-description label"), "::after").content,
        ]"""
    )
    assert star == ['" *"', '" *"']
    page.locator("input[name=title]").fill("Restore the load balancer")
    page.get_by_role("button", name="File ticket and plan").click()
    expect(page.locator("#field-risk_summary .error")).to_have_text(
        "Say what could go wrong and how you would notice."
    )
    expect(page.locator("#field-rollback_steps .error")).to_have_text(
        "Write the steps that undo this change."
    )
    expect(page.locator("#ticket-form")).not_to_contain_text("risk_assessment")
    assert not Ticket.objects.exists()


def test_the_approving_lead_starts_an_immediate_rollback_without_operations_deploying(
    browser_page: Page, live_server: Any, operations: User, tech_lead: User, monkeypatch: Any
) -> None:
    """Operations opened it (its author, who may not approve it); one lead approves and
    starts it (docs/incidents.md)."""
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    Environment.objects.filter(name="prod").update(
        immediate_rollback_start="approver", step_up_auth=False
    )
    page = browser_page
    base = live_server.url
    rollback = immediate_rollback(operations, tech_lead)
    sign_in(page, base, tech_lead.username)
    page.goto(f"{base}/tickets/{rollback.pk}/")
    page.locator("#approve-form button").click()
    expect(page.locator("#ticket-status")).to_have_text("Approved")
    page.locator("#deploy-button").click()
    expect(page.locator(".messages")).to_contain_text("Deploy started")
    assert TerraformRun.objects.filter(ticket=rollback, kind=RunKind.APPLY).count() == 1
    assert Approval.objects.filter(ticket=rollback).count() == 1


def test_cancel_asks_first(browser_page: Page, live_server: Any, author: User) -> None:
    page = browser_page
    base = live_server.url
    ticket = awaiting("staging", author, title="Scale the workers")
    sign_in(page, base, author.username)
    page.goto(f"{base}/tickets/{ticket.pk}/")
    page.locator("#cancel-link").click()
    expect(page.locator("h1")).to_contain_text("Cancel ticket")
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_APPROVAL
    page.locator("#keep-ticket").click()
    expect(page).to_have_url(f"{base}/tickets/{ticket.pk}/")
    page.locator("#cancel-link").click()
    page.locator("#confirm-cancel").click()
    expect(page.locator("#ticket-status")).to_have_text("Cancelled")


def test_disabled_buttons_look_disabled(browser_page: Page, live_server: Any, author: User) -> None:
    page = browser_page
    sign_in(page, live_server.url, author.username)
    opacity = page.evaluate(
        """() => {
          const b = document.createElement("button");
          b.className = "button"; b.disabled = true; b.textContent = "x";
          document.body.appendChild(b);
          const style = getComputedStyle(b);
          return [style.opacity, style.cursor];
        }"""
    )
    assert opacity == ["0.5", "not-allowed"]


def test_a_stale_scheduled_ticket_is_replanned_keeping_its_slot(
    browser_page: Page,
    live_server: Any,
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    page = browser_page
    base = live_server.url
    with time_machine.travel(OUTSIDE, tick=True):
        ticket = awaiting("prod", author, title="Resize the cache")
        plan = ticket.current_plan
        assert plan is not None
        plan.finished_at = timezone.now() - dt.timedelta(hours=1)
        plan.save()
        approve(tech_lead, ticket)
        approve(devops_lead, ticket)
        schedules.ticket_schedule(ticket_id=ticket.pk, actor=operations, at=SLOT)
        other = TicketFactory(
            environment=Environment.objects.get(name="prod"), author=author, status="monitoring"
        )
        DeploymentFactory(ticket=other, finished_at=timezone.now() - dt.timedelta(minutes=5))
        sign_in(page, base, operations.username)
        expect(page.locator("#queue-deploys")).to_contain_text("plan stale")
        page.goto(f"{base}/tickets/")
        expect(page.locator("tr", has_text="Resize the cache")).to_contain_text("stale plan")
        # The author, in a browser of their own.
        browser = page.context.browser
        assert browser is not None
        viewport = page.viewport_size
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15_000)
        try:
            mine = context.new_page()
            sign_in(mine, base, author.username)
            mine.goto(f"{base}/tickets/{ticket.pk}/")
            expect(mine.locator("#plan-stale")).to_be_visible()
            mine.locator("#replan-reschedule").click()
            expect(mine.locator(".messages")).to_contain_text("scheduled again for its slot")
        finally:
            context.close()
    assert PendingReschedule.objects.get(ticket=ticket).at == SLOT
