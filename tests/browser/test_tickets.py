"""The portal in a real Chromium (Playwright): signing in, filing a ticket, watching its
Terraform runs stream onto the ticket page from a real Celery worker, and form errors."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread; the ORM calls the
# fixtures and assertions make here would otherwise raise SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import itertools
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from deployments.models import Ticket
from tests.helpers.browser import RUN_TIMEOUT_MS, LiveLogs, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.terraform,
    pytest.mark.django_db(transaction=True),
]

SCREENSHOT = "/tmp/ccp-browser-ticket.png"


def test_developer_files_a_dev_ticket_in_the_browser_and_watches_it_complete(
    paced_worker: subprocess.Popen[bytes],
    author: User,
    live_server: Any,
    page: Page,
    live_logs: LiveLogs,
) -> None:
    base = live_server.url
    sign_in(page, base, "alice")

    page.get_by_role("navigation").get_by_role("link", name="New ticket").click()
    expect(page).to_have_url(f"{base}/tickets/new/")
    page.get_by_label("Title").fill("Browser e2e: sample stack to dev")
    expect(page.get_by_label("Environment")).to_have_value("dev")
    page.get_by_role("button", name="File ticket and plan").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/tickets/\d+/$"))
    ticket = Ticket.objects.get()
    assert page.url == f"{base}/tickets/{ticket.pk}/"
    expect(page.locator(".messages")).to_contain_text(f"Ticket #{ticket.pk} filed")
    expect(page.locator("h1")).to_have_text(f"#{ticket.pk} Browser e2e: sample stack to dev")

    # The page follows the runs as they happen, without reloading: the plan, then the apply.
    log_heading = page.locator("#log h2")
    live_log = page.locator("#live-log")
    expect(log_heading).to_contain_text("Plan run #")
    expect(live_log).to_contain_text("$ terraform plan", timeout=RUN_TIMEOUT_MS)
    expect(log_heading).to_contain_text("Apply run #", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#ticket-status")).to_have_text("Applying")
    expect(live_log).to_contain_text("$ terraform apply", timeout=RUN_TIMEOUT_MS)

    # Then the post-apply check, and the ticket completes.
    try:
        expect(page.locator("#ticket-status")).to_have_text("Completed", timeout=RUN_TIMEOUT_MS)
    except AssertionError:
        ticket.refresh_from_db()
        raise AssertionError(
            f"ticket is {ticket.status!r} ({ticket.status_reason}); worker exit code "
            f"{paced_worker.poll()}; live logs seen: {live_logs.summary()}"
        ) from None
    assert paced_worker.poll() is None, "the worker process died"
    expect(page.locator("#ticket-status")).to_have_attribute("data-status", "completed")

    # The live log grew in place while the plan and the apply ran: their last lines
    # arrived through portal.js, after the page had loaded.
    run_logs = []
    for needle in ("Plan saved: 24 to add", "Apply complete! Resources: 24 added"):
        url, states = live_logs.streamed(needle)
        appended = [text for how, text in states if how == "append"]
        assert any(needle in text for text in appended), (needle, live_logs.summary())
        assert len(appended[-1]) > len(states[0][1]), (needle, live_logs.summary())
        # Within one page load the log only grows (a reload starts it afresh).
        assert all(
            b.startswith(a) for (_, a), (how, b) in itertools.pairwise(states) if how == "append"
        )
        run_logs.append(url)
    assert run_logs[0] != run_logs[1], "the plan and the apply are different runs"

    expect(page.locator("#plan .summary .add")).to_have_text("+24 to add")
    expect(page.locator("#plan .summary")).to_contain_text("~0 to change")
    expect(page.locator("#plan .summary")).to_contain_text("-0 to destroy")
    # The finished page shows the post-apply check; the apply log is one click away.
    expect(log_heading).to_contain_text("Post-apply check run #")
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(live_log).to_contain_text("No changes")
    runs = page.locator("table.runs tbody tr:not(.run-log-row)")
    expect(runs.locator(".status")).to_have_text(["Succeeded"] * 3)
    apply_log = page.locator(".run-log-row details").filter(has_text="Apply complete!")
    apply_log.locator("summary").click()
    expect(apply_log.locator("pre")).to_be_visible()
    expect(apply_log.locator("pre")).to_contain_text("Apply complete! Resources: 24 added")

    page.screenshot(path=SCREENSHOT, full_page=True)


def test_new_ticket_form_shows_a_field_error_for_a_bad_commit_and_keeps_the_input(
    infra_repo: Path, author: User, live_server: Any, page: Page
) -> None:
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/tickets/new/")

    title = "Pin the sample stack to a commit"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Commit SHA").fill("not-a-sha")
    page.get_by_role("button", name="File ticket and plan").click()

    expect(page).to_have_url(f"{base}/tickets/new/")
    field = page.locator(".field").filter(has=page.locator("#id_commit_sha"))
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.get_by_role("alert")).to_have_text(
        "commit_sha must be a full 40-character hex SHA"
    )
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.get_by_label("Title")).to_have_value(title)
    expect(page.get_by_label("Commit SHA")).to_have_value("not-a-sha")
    expect(page.get_by_label("Environment")).to_have_value("dev")
    assert not Ticket.objects.exists()


def test_pages_require_sign_in(live_server: Any, page: Page) -> None:
    base = live_server.url
    page.goto(f"{base}/")

    expect(page).to_have_url(f"{base}/accounts/login/?next=/")
    expect(page.locator("input[name=login]")).to_be_visible()
    expect(page.locator("input[name=password]")).to_be_visible()
    expect(page.get_by_role("navigation")).to_have_count(0)
