"""In a real Chromium: a Tech Lead reviews a prod ticket — the timeline at the top, the
commit with a compare link, the plan as structured diffs (destructive changes first and
flagged, attributes before → after with the sensitive ones masked, filters by action),
the approve panel below the plan saying who else is needed, a run number leading to the
run's page with its log. A dev ticket shows no prod-only section. At 390 px the navigation
collapses behind a button and the page never scrolls sideways.

The README's screenshot docs/screenshots/ticket-review.png is this page:
``UPDATE_SCREENSHOTS=1`` writes it there; otherwise it goes to the test's temporary
directory."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from deployments.choices import TicketStatus
from deployments.models import Environment
from tests.helpers.axe import DESKTOP, PHONE, horizontal_overflow
from tests.helpers.browser import sign_in
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.paths import ROOT
from tests.helpers.review import SECRET, demo_users, ticket_under_review

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


def test_a_lead_reviews_the_plan_and_approves_below_it(
    chromium: Browser, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.INFRA_REPO_WEB_URL = "https://git.example.com/acme/infra"
    users = demo_users()
    ticket = ticket_under_review(users["dev1"], users["techlead1"])
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "devopslead1")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")

        # The timeline, in order, with who and how long.
        steps = page.locator("#timeline .tl-step")
        expect(steps.locator(".tl-label")).to_have_text(
            [
                "Filed",
                "Planned",
                "Policy and checks",
                "Approvals",
                "Applied",
                "Monitoring",
                "Completed",
            ]
        )
        expect(page.locator("#tl-filed")).to_contain_text("dev1")
        expect(page.locator("#tl-planned")).to_have_attribute("data-state", "done")
        expect(page.locator("#tl-planned .tl-took")).to_have_text("42 s")
        expect(page.locator("#tl-approvals")).to_have_attribute("data-state", "current")
        expect(page.locator("#tl-approvals")).to_contain_text("techlead1 (Tech Lead)")
        expect(page.locator("#tl-approvals")).to_contain_text("still needed: a DevOps Lead")
        # The raw audit trail is one click away, not the default.
        expect(page.locator("#history-details")).not_to_have_attribute("open", "")

        # The commit: message, author, compare link to the last deployed commit.
        expect(page.locator("#commit-subject")).to_have_text(
            "Upgrade the database to PostgreSQL 16"
        )
        expect(page.locator("#commit-author")).to_have_text("by Alice Example")
        compare = page.locator("#compare-link")
        expect(compare).to_have_attribute(
            "href",
            f"https://git.example.com/acme/infra/compare/{_last_sha(ticket)}...{ticket.commit_sha}",
        )

        # Destructive changes first, flagged.
        expect(page.locator("#plan-destructive li")).to_have_count(2)
        groups = page.locator("#plan-changes .change-group")
        expect(groups.first).to_have_attribute("data-action", "destroy")
        expect(groups.nth(1)).to_have_attribute("data-action", "replace")
        db = page.locator('details[data-address="module.database.aws_db_instance.main"]')
        expect(db.locator("summary .flag")).to_contain_text("replaced")
        db.locator("summary").click()
        rows = db.locator("table.diff tbody tr")
        expect(rows.first).to_contain_text("engine_version")
        expect(rows.first).to_contain_text("forces replacement")
        expect(rows.first.locator("td.before")).to_have_text('"14.9"')
        expect(rows.first.locator("td.after")).to_have_text('"16.3"')
        expect(db).to_contain_text("(known after apply)")
        assert SECRET not in page.content()
        web = page.locator('details[data-address="aws_instance.web"]')
        web.locator("summary").click()
        expect(web.locator("tr", has_text="tags.tier")).to_contain_text('"front"')
        expect(web.locator("tr", has_text="tags.tier")).to_contain_text('"edge"')

        # Filters by action.
        page.locator('#plan-filters button[data-filter="update"]').click()
        expect(page.locator('#plan-filters button[data-filter="update"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator('.change-group[data-action="destroy"]')).to_be_hidden()
        expect(web).to_be_visible()
        page.locator('#plan-filters button[data-filter="all"]').click()
        expect(page.locator('.change-group[data-action="destroy"]')).to_be_visible()

        # The approve panel comes after the plan and says who else is needed.
        order = page.evaluate(
            "() => [...document.querySelectorAll('main section[id]')].map((s) => s.id)"
        )
        assert order.index("plan") < order.index("approvals") < order.index("log"), order
        expect(page.locator("#still-needed")).to_have_text("a DevOps Lead")
        expect(page.locator("#who-can-approve")).to_contain_text("devopslead1 (DevOps Lead)")
        expect(page.locator("#approve-form")).to_be_visible()
        folder = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
        shot = folder / "ticket-review.png"
        page.locator("#plan-filters").scroll_into_view_if_needed()
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # Run numbers lead to the run's page, with its log.
        page.locator("#plan-run-link").click()
        expect(page).to_have_url(f"{live_server.url}/runs/{ticket.current_plan_id}/")
        expect(page.locator("h1")).to_have_text(f"Plan run #{ticket.current_plan_id}")
        expect(page.locator("#live-log")).to_contain_text("Plan: 2 to add, 1 to change")
        expect(page.locator("#run-summary")).to_contain_text("to destroy")
        page.locator("#run-ticket").click()
        page.locator("#approve-form button").click()
        expect(page.locator("#tl-approvals")).to_have_attribute("data-state", "done")
    finally:
        context.close()


def _last_sha(ticket: Any) -> str:
    from deployments.models import Deployment

    return (
        Deployment.objects.filter(environment=ticket.environment).latest("finished_at").commit_sha
    )


def test_a_dev_ticket_shows_no_prod_only_sections(chromium: Browser, live_server: Any) -> None:
    users = demo_users()
    ticket = TicketFactory(
        environment=Environment.objects.get(name="dev"),
        author=users["dev1"],
        status=TicketStatus.COMPLETED,
        risk={"level": "low", "score": 0, "reasons": []},
    )
    ticket.current_plan = RunFactory(
        ticket=ticket, summary={"add": 1, "change": 0, "destroy": 0, "resources": []}
    )
    ticket.save()
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "dev1")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
        expect(page.locator("#timeline")).to_be_visible()
        expect(page.locator("#tl-approvals")).to_have_attribute("data-state", "skipped")
        expect(page.locator("#risk")).to_have_count(0)
        expect(page.locator("#rollback")).to_have_count(0)
        expect(page.locator("#approvals")).to_have_count(0)
    finally:
        context.close()


def test_on_a_phone_the_menu_collapses_and_nothing_scrolls_sideways(
    chromium: Browser, live_server: Any
) -> None:
    users = demo_users()
    ticket = ticket_under_review(users["dev1"])
    context = chromium.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in_phone(page, live_server.url, "techlead1")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
        toggle = page.locator("#nav-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("#site-menu")).to_be_hidden()
        assert horizontal_overflow(page) == 0
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.get_by_role("link", name="Tickets", exact=True)).to_be_visible()
        expect(page.locator("#who-name")).to_contain_text("techlead1 · Tech Lead")
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        page.keyboard.press("Escape")
        expect(page.locator("#site-menu")).to_be_hidden()
        expect(toggle).to_be_focused()
        # The skip link is the first stop of the keyboard and lands on the content.
        page.reload()
        page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        # The log is reachable with the keyboard (it scrolls).
        page.locator("#live-log").focus()
        expect(page.locator("#live-log")).to_be_focused()
        # A wide diff scrolls inside its own box.
        db = page.locator('details[data-address="module.database.aws_db_instance.main"]')
        db.locator("summary").click()
        assert horizontal_overflow(page) == 0
    finally:
        context.close()
    # Without JavaScript the menu is simply there, wrapped: still nothing scrolls sideways.
    plain = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    page = plain.new_page()
    try:
        sign_in_phone(page, live_server.url, "techlead1")
        page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
        expect(page.locator("#nav-toggle")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert horizontal_overflow(page) == 0
    finally:
        plain.close()
    desktop = chromium.new_context(viewport=DESKTOP)
    page = desktop.new_page()
    try:
        sign_in(page, live_server.url, "techlead1")
        expect(page.locator("#nav-toggle")).to_be_hidden()
        expect(page.locator("#site-menu")).to_be_visible()
    finally:
        desktop.close()


def sign_in_phone(page: Any, base: str, username: str) -> None:
    """sign_in, which checks the name in the (collapsed) menu, opened for it."""
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill("pw")
    page.locator("form").filter(has=page.locator("input[name=password]")).locator(
        "button[type=submit]"
    ).click()
    expect(page).to_have_url(f"{base}/")


def test_the_404_page_has_the_navigation(chromium: Browser, live_server: Any) -> None:
    demo_users()
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "dev1")
        response = page.goto(f"{live_server.url}/no/such/page/")
        assert response is not None and response.status == 404
        expect(page.locator("h1")).to_have_text("Not found")
        expect(page.locator("nav").get_by_role("link", name="Tickets", exact=True)).to_be_visible()
        icon = page.locator('link[rel="icon"]').get_attribute("href")
        assert icon and page.request.get(f"{live_server.url}{icon}").ok
    finally:
        context.close()
