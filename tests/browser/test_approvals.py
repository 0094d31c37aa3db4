"""Approvals in a real Chromium (Playwright), one browser context per person: a prod ticket
needs a Tech Lead and a DevOps Lead, a new plan voids earlier approvals, and operations
may deploy only inside the change window; a staging ticket needs one lead, then its author
deploys it and watches the apply stream onto the page. Plans and applies run on a real
Celery worker with the real Terraform binary."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread; the ORM calls the
# fixtures and assertions make here would otherwise raise SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Approval, Ticket
from tests.helpers.browser import LIVE_LOG_RECORDER, LiveLogs, sign_in
from tests.helpers.waiting import paced_terraform

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.terraform,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]

RUN_TIMEOUT_MS = 120_000
APPLY_PAUSE_SECONDS = 3
SCREENSHOT = "/tmp/ccp-browser-approved.png"

OUTSIDE_WINDOW = "2026-11-24 12:00:00+00:00"  # Tuesday 07:00 in New York
INSIDE_WINDOW = "2026-11-24 07:30:00+00:00"  # Tuesday 02:30 in New York

PROD_RULE = "prod needs Tech Lead and DevOps Lead, two different people"
NO_PROD_ROLE = f"You cannot approve: {PROD_RULE}; you hold none of those roles."
AUTHORED = "You cannot approve: you authored this ticket; someone else must approve it."


@pytest.fixture
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> subprocess.Popen[bytes]:
    """The real Celery worker running the real Terraform, except that `terraform apply`
    waits a few seconds before it starts, so the ticket page is loaded while it runs
    (on the offline sample stack an apply is over in about half a second)."""
    paced_terraform(tmp_path, monkeypatch, commands=("apply",), seconds=APPLY_PAUSE_SECONDS)
    proc: subprocess.Popen[bytes] = request.getfixturevalue("celery_worker_process")
    return proc


class People:
    """One browser context per person, each signed in with a password the first time
    they are needed (a recent sign-in, so prod asks for no second password)."""

    def __init__(self, chromium: Browser, base: str) -> None:
        self.chromium = chromium
        self.base = base
        self.pages: dict[str, Page] = {}
        self.live_logs: dict[str, LiveLogs] = {}

    def __call__(self, username: str) -> Page:
        if username not in self.pages:
            context = self.chromium.new_context(
                viewport={"width": 1280, "height": 900}, timezone_id="UTC"
            )
            context.set_default_timeout(15_000)
            self.live_logs[username] = LiveLogs()
            context.expose_function("ccpRecordLiveLog", self.live_logs[username].record)
            context.add_init_script(LIVE_LOG_RECORDER)
            page = context.new_page()
            sign_in(page, self.base, username)
            self.pages[username] = page
        return self.pages[username]

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


@pytest.fixture
def people(chromium: Browser, live_server: Any) -> Iterator[People]:
    people = People(chromium, live_server.url)
    try:
        yield people
    finally:
        people.close()


def file_ticket(page: Page, base: str, fields: dict[str, str]) -> Ticket:
    """Fill in the "New ticket" form (field labels as keys) and submit it."""
    page.get_by_role("navigation").get_by_role("link", name="New ticket").click()
    expect(page).to_have_url(f"{base}/tickets/new/")
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        if label in ("Environment", "Impact", "Likelihood"):
            control.select_option(value)
        else:
            control.fill(value)
    page.get_by_role("button", name="File ticket and plan").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/tickets/\d+/$"))
    ticket = Ticket.objects.get(title=fields["Title"])
    assert page.url == f"{base}/tickets/{ticket.pk}/"
    expect(page.locator(".messages")).to_contain_text(
        f"Ticket #{ticket.pk} filed; planning has started."
    )
    expect(page.locator("h1")).to_have_text(f"#{ticket.pk} {fields['Title']}")
    return ticket


def open_ticket(page: Page, base: str, ticket: Ticket) -> None:
    page.goto(f"{base}/tickets/{ticket.pk}/")
    expect(page.locator("h1")).to_have_text(f"#{ticket.pk} {ticket.title}")


def wait_until(
    page: Page, ticket: Ticket, worker: subprocess.Popen[bytes], status: TicketStatus
) -> None:
    """Wait for the page to show ``status`` once no run is active any more.

    portal.js updates the status badge as soon as the run ends and then reloads the page;
    only the reloaded page shows the final state (approvals, actions) and no active run.
    """
    try:
        expect(page.locator("#ticket-status")).to_have_attribute(
            "data-status", status.value, timeout=RUN_TIMEOUT_MS
        )
        expect(page.locator("#live-log")).to_have_attribute("data-active", "0")
    except AssertionError:
        ticket.refresh_from_db()
        raise AssertionError(
            f"waiting for {status.value}: ticket #{ticket.pk} is {ticket.status!r} "
            f"({ticket.status_reason}); worker exit code {worker.poll()}"
        ) from None
    expect(page.locator("#ticket-status")).to_have_text(status.label)


def approve(page: Page, comment: str) -> None:
    form = page.locator("#approve-form")
    form.locator("input[name=comment]").fill(comment)
    form.get_by_role("button").click()
    # No password prompt: everyone here signed in moments ago.
    expect(page.locator(".messages")).to_have_text("Approved.")
    assert "/accounts/reauthenticate/" not in page.url


def test_prod_ticket_is_approved_by_a_tech_lead_and_a_devops_lead_in_the_browser(
    worker: subprocess.Popen[bytes],
    author: User,
    lead: User,
    qa: User,
    operations: User,
    tech_lead: User,
    devops_lead: User,
    live_server: Any,
    people: People,
) -> None:
    base = live_server.url

    # 1. alice files a prod ticket with the change details prod requires; it plans.
    alice = people("alice")
    ticket = file_ticket(
        alice,
        base,
        {
            "Title": "Scale prod app servers in the browser",
            "Environment": "prod",
            "Description": "Four app servers for the campaign.",
            "Impact": "low",
            "Likelihood": "low",
            "Risk summary": "Low: the change only adds servers.",
            "Rollback steps": "Re-apply the previous commit.",
            "Expected rollback time (minutes)": "15",
        },
    )
    wait_until(alice, ticket, worker, TicketStatus.AWAITING_APPROVAL)
    ticket.refresh_from_db()
    first_plan = ticket.current_plan
    assert first_plan is not None and first_plan.summary["add"] == 39
    expect(alice.locator("#plan .summary .add")).to_have_text("+39 to add")
    expect(alice.locator("#approvals")).to_contain_text(
        "prod needs Tech Lead and DevOps Lead, two different people."
    )
    expect(alice.locator("#still-needed")).to_have_text("a Tech Lead and a DevOps Lead")
    expect(alice.locator("#approvals li")).to_have_text(["No approvals yet."])

    # 2. A lead developer and QA do not see prod tickets at all (SPEC §2).
    for username in ("lena", "quinn"):
        response = people(username).goto(f"{base}/tickets/{ticket.pk}/")
        assert response is not None and response.status == 404, username

    # The author and operations may not approve; each is told why.
    for username, why in [
        ("alice", AUTHORED),
        ("opal", NO_PROD_ROLE),
    ]:
        page = people(username)
        open_ticket(page, base, ticket)
        expect(page.locator("#ticket-status")).to_have_attribute("data-status", "awaiting_approval")
        expect(page.locator("#approve-form")).to_have_count(0)
        expect(page.locator("#reject-form")).to_have_count(0)
        expect(page.locator("#approve-why")).to_have_text(why)

    # 3. tess approves as Tech Lead; a DevOps Lead is still needed.
    tess = people("tess")
    open_ticket(tess, base, ticket)
    expect(tess.locator("#approve-form button")).to_have_text(
        f"Approve plan {first_plan.plan_sha256[:12]}"
    )
    expect(tess.locator("#reject-form")).to_be_visible()
    approve(tess, "Reviewed the plan: additive only.")
    assert tess.url == f"{base}/tickets/{ticket.pk}/"
    expect(tess.locator("#ticket-status")).to_have_attribute("data-status", "awaiting_approval")
    expect(tess.locator("#ticket-status")).to_have_text("Awaiting approval")
    expect(tess.locator("#still-needed")).to_have_text("a DevOps Lead")
    approvals = tess.locator("#approvals li")
    expect(approvals).to_have_count(1)
    expect(approvals).to_contain_text("tess as Tech Lead")
    expect(approvals).to_contain_text(f"plan run #{first_plan.pk}")
    expect(approvals.locator("q")).to_have_text("Reviewed the plan: additive only.")
    expect(tess.locator("#approvals li.void")).to_have_count(0)
    expect(tess.locator("#approve-form")).to_have_count(0)
    expect(tess.locator("#approve-why")).to_have_text(
        "You cannot approve: you have already approved this plan."
    )

    # 4. alice plans again, saying why: the new plan voids tess's approval, which stays
    # visible with the reason.
    alice.reload()
    alice.get_by_label("Reason for re-planning").fill("Rebased on main.")
    alice.get_by_role("button", name="Plan again").click()
    expect(alice.locator(".messages")).to_have_text(
        "A new plan has been queued; earlier approvals no longer count."
    )
    wait_until(alice, ticket, worker, TicketStatus.AWAITING_APPROVAL)
    ticket.refresh_from_db()
    second_plan = ticket.current_plan
    assert second_plan is not None and second_plan.pk != first_plan.pk
    void = alice.locator("#approvals li.void")
    expect(void).to_have_count(1)
    expect(void).to_contain_text("tess as Tech Lead")
    expect(void.locator("em")).to_have_text(
        f"void: plan run {second_plan.pk} replaced the approved plan "
        "(re-planned by alice): Rebased on main."
    )
    expect(alice.locator("#still-needed")).to_have_text("a Tech Lead and a DevOps Lead")

    # 5. otto approves as DevOps Lead, then tess approves the new plan: approved.
    otto = people("otto")
    open_ticket(otto, base, ticket)
    expect(otto.locator("#approve-form button")).to_have_text(
        f"Approve plan {second_plan.plan_sha256[:12]}"
    )
    approve(otto, "Capacity is fine.")
    expect(otto.locator("#ticket-status")).to_have_text("Awaiting approval")
    expect(otto.locator("#still-needed")).to_have_text("a Tech Lead")

    open_ticket(tess, base, ticket)
    expect(tess.locator("#approve-form button")).to_have_text(
        f"Approve plan {second_plan.plan_sha256[:12]}"
    )
    approve(tess, "Re-reviewed the new plan.")
    expect(tess.locator("#ticket-status")).to_have_attribute("data-status", "approved")
    expect(tess.locator("#ticket-status")).to_have_text("Approved")
    expect(tess.locator("#status-reason")).to_have_text(
        "approved by otto (DevOps Lead), tess (Tech Lead); waiting for a deploy"
    )
    expect(tess.locator("#approvals .status-approved")).to_have_text("complete")
    expect(tess.locator("#still-needed")).to_have_count(0)
    standing = tess.locator("#approvals li:not(.void)")
    expect(standing).to_have_count(2)
    expect(standing.nth(0)).to_contain_text("otto as DevOps Lead")
    expect(standing.nth(1)).to_contain_text("tess as Tech Lead")
    expect(tess.locator("#approvals li.void")).to_have_count(1)
    # Approvers do not deploy prod.
    expect(tess.locator("#deploy-button")).to_have_count(0)
    expect(tess.locator("#deploy-why")).to_have_text("Deploy: prod deploys are done by Operations")
    assert {
        (a.approver.username, a.plan_run_id, a.is_void)
        for a in Approval.objects.filter(ticket=ticket).select_related("approver")
    } == {
        ("tess", first_plan.pk, True),
        ("otto", second_plan.pk, False),
        ("tess", second_plan.pk, False),
    }

    # 6. opal (operations) may deploy, but only inside the change window.
    opal = people("opal")
    with time_machine.travel(OUTSIDE_WINDOW, tick=True):
        open_ticket(opal, base, ticket)
        expect(opal.locator("#ticket-status")).to_have_text("Approved")
        expect(opal.locator("#deploy-button")).to_have_count(0)
        expect(opal.locator("#deploy-why")).to_have_text(
            re.compile(
                r"^Deploy: prod deploys only inside the change window "
                r"\(Tue/Thu 02:00\u201304:00 America/New_York\); "
                # in opal's zone (the browser's, UTC), New York's on hover
                r"the next window opens Thu 26 Nov 07:00 UTC, in 1 day 1[89] h$"
            )
        )
        opal.screenshot(path=SCREENSHOT, full_page=True)
    with time_machine.travel(INSIDE_WINDOW, tick=True):
        open_ticket(opal, base, ticket)
        expect(opal.locator("#deploy-button")).to_have_text("Deploy approved plan")
        expect(opal.locator("#deploy-why")).to_have_count(0)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED
    assert not ticket.runs.filter(kind=RunKind.APPLY).exists()
    assert worker.poll() is None, "the worker process died"


def test_staging_ticket_is_approved_by_one_lead_developer_in_the_browser(
    worker: subprocess.Popen[bytes],
    author: User,
    lead: User,
    live_server: Any,
    people: People,
) -> None:
    base = live_server.url

    alice = people("alice")
    ticket = file_ticket(
        alice, base, {"Title": "Staging change approved in the browser", "Environment": "staging"}
    )
    wait_until(alice, ticket, worker, TicketStatus.AWAITING_APPROVAL)
    expect(alice.locator("#still-needed")).to_have_text("a Lead Developer or Tech Lead")
    expect(alice.locator("#approve-why")).to_have_text(AUTHORED)
    expect(alice.locator("#deploy-button")).to_have_count(0)

    # One lead developer's approval is enough for staging.
    lena = people("lena")
    open_ticket(lena, base, ticket)
    approve(lena, "Ship it to staging.")
    expect(lena.locator("#ticket-status")).to_have_attribute("data-status", "approved")
    expect(lena.locator("#ticket-status")).to_have_text("Approved")
    expect(lena.locator("#approvals li")).to_have_count(1)
    expect(lena.locator("#approvals li")).to_contain_text("lena as Lead Developer")
    expect(lena.locator("#approvals .status-approved")).to_have_text("complete")

    # alice, a developer, may deploy staging herself; the page follows the apply live.
    alice.reload()
    expect(alice.locator("#ticket-status")).to_have_text("Approved")
    alice.locator("#deploy-button").click()
    expect(alice.locator(".messages")).to_have_text(
        "Deploy started: Terraform is applying the approved plan."
    )
    expect(alice.locator("#ticket-status")).to_have_attribute("data-status", "applying")
    expect(alice.locator("#ticket-status")).to_have_text("Applying")
    expect(alice.locator("#log h2")).to_contain_text("Apply run #")
    wait_until(alice, ticket, worker, TicketStatus.MONITORING)
    expect(alice.locator("#status-reason")).to_have_text("applied; monitoring")

    ticket.refresh_from_db()
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED
    assert ticket.current_plan is not None and apply.plan_id == ticket.current_plan.pk
    added = ticket.current_plan.summary["add"]
    done = f"Apply complete! Resources: {added} added"
    # The reloaded page shows the finished apply; its last lines had already arrived
    # through portal.js while the page was open, before that reload.
    expect(alice.locator("#run-title")).to_have_text(f"Apply run #{apply.pk}")
    expect(alice.locator("#run-status")).to_have_text("Succeeded")
    expect(alice.locator("#live-log")).to_contain_text(done)
    url, states = people.live_logs["alice"].streamed(done)
    assert url == f"/runs/{apply.pk}/log/", url
    appended = [text for how, text in states if how == "append"]
    assert any(done in text for text in appended), people.live_logs["alice"].summary()
    assert done not in states[0][1], "the apply had already finished when the page loaded"
    assert worker.poll() is None, "the worker process died"
