"""Every page of the portal (Swagger UI's own widget aside), as the personas who use it,
with a realistic history: zero axe-core violations (WCAG A/AA and best practices; axe is
vendored under tests/browser/vendor/ and injected here only) and no sideways scroll, at
1366 px and at 390 px (a phone)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from deployments.choices import RunKind, TicketStatus
from deployments.models import ApiKey, TerraformRun, Ticket
from tests.helpers.axe import (
    DESKTOP,
    PHONE,
    axe_violations,
    horizontal_overflow,
    overflowing_elements,
)
from tests.helpers.browser import sign_in
from tests.helpers.review import demo_users, realistic_portal, ticket_under_review

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


def _pages(review: Ticket) -> dict[str, list[str]]:
    """Per persona, the pages they visit."""
    plan = review.current_plan
    assert plan is not None
    tickets = Ticket.objects.exclude(pk=review.pk)
    shown = [review.pk]
    for status in (
        TicketStatus.COMPLETED,
        TicketStatus.MONITORING,
        TicketStatus.APPLY_FAILED,
        TicketStatus.PLAN_FAILED,
        TicketStatus.SCHEDULED,
    ):
        found = tickets.filter(status=status).order_by("-pk").first()
        if found is not None:
            shown.append(found.pk)
    dev = tickets.filter(environment__name="dev", status=TicketStatus.COMPLETED).first()
    if dev is not None:
        shown.append(dev.pk)
    apply = TerraformRun.objects.filter(kind=RunKind.APPLY).order_by("-pk").first()
    deployed = tickets.filter(environment__name="prod", status=TicketStatus.COMPLETED).first()
    common = [
        "/",
        "/tickets/",
        "/tickets/?environment=prod",
        "/environments/",
        "/environments/dev/history/",
        "/calendar/",
        "/metrics/",
        "/settings/",
        "/settings/tokens/",
        "/settings/tokens/new/",
        "/accounts/2fa/",
        "/accounts/password/change/",
        "/accounts/reauthenticate/",
        "/accounts/2fa/totp/activate/",
        "/no-such-page/",
        f"/runs/{plan.pk}/",
    ]
    return {
        "dev1": [*common, "/tickets/new/", *(f"/tickets/{pk}/" for pk in shown)],
        "techlead1": [
            "/",
            f"/tickets/{review.pk}/",
            "/audit/",
            "/notifications/",
            "/environments/prod/history/",
            *([f"/runs/{apply.pk}/"] if apply else []),
        ],
        "ops1": ["/", *(f"/tickets/{pk}/" for pk in shown[1:3])],
        "lead1": ["/", "/tickets/?environment=staging", "/environments/staging/history/"],
        "qa1": [
            "/",
            *(f"/tickets/{t.pk}/" for t in tickets.filter(environment__name="staging")[:2]),
        ],
        "admin": [
            "/",
            "/audit/",
            *([f"/tickets/{deployed.pk}/rollback/"] if deployed else []),
            f"/settings/tokens/{ApiKey.objects.get(name='CI').pk}/revoke/",
        ],
    }


def _check(page: Any, url: str, problems: list[str], width: int) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    # What is folded away (plan diffs, logs, the audit trail) is checked too.
    page.evaluate(
        "() => document.querySelectorAll('main details').forEach((d) => { d.open = true; })"
    )
    # Swagger UI's widget is not the portal's (it brings its own <main>, too).
    docs = url.endswith("/api/docs/")
    violations = axe_violations(
        page,
        exclude=("#swagger-ui",),
        disable=("landmark-no-duplicate-main",) if docs else (),
    )
    for v in violations:
        problems.append(f"{width}px {url}: {v['id']} ({v['impact']}) {v['help']}: {v['nodes']}")
    over = horizontal_overflow(page)
    if over:
        problems.append(
            f"{width}px {url}: scrolls sideways by {over}px: {overflowing_elements(page)}"
        )


def test_every_page_has_no_axe_violation_and_no_sideways_scroll(
    chromium: Browser, live_server: Any
) -> None:
    users = demo_users()
    realistic_portal(users)
    review = ticket_under_review(users["dev1"], users["techlead1"])
    from deployments.services.apikeys import api_key_create

    api_key_create(actor=users["admin"], user=users["admin"], name="CI")
    pages = _pages(review)
    problems: list[str] = []
    visited = 0
    for viewport in (DESKTOP, PHONE):
        for username, urls in pages.items():
            context = chromium.new_context(viewport=viewport, bypass_csp=True)
            context.set_default_timeout(20_000)
            page = context.new_page()
            try:
                sign_in(page, live_server.url, username)
                for url in urls:
                    _check(page, live_server.url + url, problems, viewport["width"])
                    visited += 1
            finally:
                context.close()
        context = chromium.new_context(viewport=viewport, bypass_csp=True)
        page = context.new_page()
        try:
            _check(page, live_server.url + "/accounts/login/", problems, viewport["width"])
            _check(page, live_server.url + "/api/docs/", problems, viewport["width"])
        finally:
            context.close()
    assert visited > 40
    if problems:
        (Path(os.environ.get("AXE_REPORT", "/dev/null"))).write_text("\n".join(problems))
    assert not problems, "\n".join(problems)
