"""Evidence in a real Chromium: QA drops two files onto a staging ticket, signs the CI's
smoke tests off and adds the QA report, which completes the ticket; a Tech Lead then opens
the prod ticket of the same commit and finds its description, scored risk, rollback plan
and that evidence above the approve button."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from playwright.sync_api import Browser, Page, expect

from deployments.choices import TicketStatus
from deployments.models import Evidence, Ticket
from deployments.services.risk import ticket_risk_refresh
from tests.helpers.browser import sign_in
from tests.helpers.evidence import PNG, staging_ticket, stored_files, upload
from tests.helpers.factories import RISK_OK, ROLLBACK_OK
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/ccp-browser-evidence.png"


@pytest.fixture
def people(chromium: Browser, live_server: Any) -> Iterator[Any]:
    pages: dict[str, Page] = {}

    def page_for(username: str) -> Page:
        if username not in pages:
            context = chromium.new_context(viewport={"width": 1280, "height": 1000})
            context.set_default_timeout(15_000)
            pages[username] = context.new_page()
            sign_in(pages[username], live_server.url, username)
        return pages[username]

    yield page_for
    for page in pages.values():
        page.context.close()


def drop_files(page: Page, target: str, files: list[tuple[str, bytes, str]]) -> None:
    """A real drop event carrying files, as the browser fires when files are dragged in."""
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                dt.items.add(new File([new Uint8Array(f.bytes)], f.name, {type: f.type}));
            }
            return dt;
        }""",
        [{"name": n, "bytes": list(b), "type": t} for n, b, t in files],
    )
    page.dispatch_event(target, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})


def test_qa_drops_files_signs_off_staging_and_the_tech_lead_sees_it_on_prod(
    people: Any,
    live_server: Any,
    author: User,
    developer: User,
    qa: User,
    tech_lead: User,
    evidence_dir: Path,
    tmp_path: Path,
) -> None:
    base = live_server.url
    staging = staging_ticket(author)
    prod = awaiting(
        "prod",
        author,
        commit_sha=staging.commit_sha,
        description="Four app servers for the autumn campaign.",
        risk_assessment={**RISK_OK, "customer_facing": True},
        rollback_plan=ROLLBACK_OK,
    )
    with transaction.atomic():  # scored from its plan, as the worker does when it finishes
        ticket_risk_refresh(prod, actor="worker", run=prod.current_plan)
    # CI reported its smoke-test run through the API, without a verdict.
    assert upload(developer, staging, name="smoke-run-7.txt").status_code == 201

    quinn = people("quinn")
    quinn.goto(f"{base}/tickets/{staging.pk}/")
    expect(quinn.locator("#signoff-missing")).to_contain_text("passed smoke_tests")
    screenshots = [("checkout.png", PNG, "image/png"), ("player.png", PNG, "image/png")]
    # Dropped before a kind is chosen: the files wait, nothing is filed under a kind nobody
    # picked (the first one offered to QA is the QA report).
    drop_files(quinn, "#evidence-drop", screenshots)
    chosen = quinn.locator("#evidence-chosen")
    expect(chosen).to_contain_text("Choose the kind of evidence, then Upload.")
    expect(chosen).to_contain_text("checkout.png")
    quinn.select_option("#evidence-kind", "screenshot")
    drop_files(quinn, "#evidence-drop", screenshots)
    expect(quinn.locator(".messages")).to_contain_text("Uploaded checkout.png, player.png")
    assert Evidence.objects.count() == 3 and not Evidence.objects.filter(kind="qa_report")
    assert sorted(
        Evidence.objects.filter(kind="screenshot").values_list("filename", flat=True)
    ) == [
        "checkout.png",
        "player.png",
    ]
    smoke = Evidence.objects.get(kind="smoke_tests")
    row = quinn.locator(f'tr[data-evidence="{smoke.pk}"]')
    row.locator("input[name=note]").fill("42 passed, 0 failed")
    row.get_by_role("button", name="Pass").click()
    expect(quinn.locator("body")).to_contain_text("smoke-run-7.txt signed off as passed")
    expect(quinn.locator("#signoff-missing")).to_contain_text("passed qa_report")

    report = tmp_path / "qa-report.txt"
    report.write_text("Exploratory testing of the campaign pages: no defects.\n")
    quinn.select_option("#evidence-kind", "qa_report")
    quinn.select_option("#evidence-passed", "true")
    quinn.set_input_files("#evidence-files", str(report))
    quinn.locator("#evidence-upload").click()
    expect(quinn.locator("#ticket-status")).to_have_attribute("data-status", "completed")
    expect(quinn.locator("#signoff-done")).to_be_visible()
    assert Ticket.objects.get(pk=staging.pk).status == TicketStatus.COMPLETED
    assert len(stored_files(evidence_dir)) == 4

    tess = people("tess")
    tess.goto(f"{base}/tickets/{prod.pk}/")
    section = tess.locator("#staging-evidence")
    expect(section.locator("#staging-validated")).to_be_visible()
    for name in ("smoke-run-7.txt", "checkout.png", "player.png", "qa-report.txt"):
        expect(section).to_contain_text(name)
    # The scored risk with its reasons and the rollback plan, on the same page.
    expect(tess.locator("body")).to_contain_text("Four app servers for the autumn campaign.")
    expect(tess.locator("#risk-level")).to_have_text("low")
    expect(tess.locator("#risk-reasons")).to_contain_text("customer facing: +2")
    expect(tess.locator("#risk-summary")).to_contain_text(str(RISK_OK["summary"]))
    expect(tess.locator("#rollback-steps")).to_contain_text(str(ROLLBACK_OK["steps"]))
    expect(tess.locator("#rollback-facts")).to_contain_text("10 minutes")
    expect(tess.locator("#approve-form")).to_be_visible()
    for shown in ("#risk", "#rollback-steps", "#staging-evidence"):
        above = tess.evaluate(
            "(shown) => document.querySelector(shown).compareDocumentPosition("
            "document.querySelector('#approve-form')) & Node.DOCUMENT_POSITION_FOLLOWING",
            shown,
        )
        assert above, f"{shown} is not above the approve button"
    tess.screenshot(path=SCREENSHOT, full_page=True)
    # The evidence opens from the prod page (plain text inline, nosniff), byte for byte.
    href = section.get_by_role("link", name="qa-report.txt").get_attribute("href")
    opened = tess.context.request.get(f"{base}{href}")
    assert opened.status == 200 and opened.body() == report.read_bytes()
    assert opened.headers["content-type"] == "text/plain"
    assert opened.headers["x-content-type-options"] == "nosniff"
    tess.locator("#approve-form button").click()
    expect(tess.locator("#still-needed")).to_contain_text("DevOps Lead")
    assert prod.approvals.get().approver == tech_lead
