"""Every page of the portal (Swagger UI's own widget aside), as the personas who use it,
with a realistic history: zero axe-core violations (WCAG A/AA and best practices; axe is
vendored under tests/browser/vendor/ and injected here only) and no sideways scroll, at
1366 px and at 390 px (a phone).

Every HTML page of deployments/pages/urls.py is here (test_every_portal_page_is_listed
says so of each GET route), with the states a form page shows after a post (errors, a new
token), the 403, 404 and 500 pages, and allauth's pages the portal styles."""

from __future__ import annotations

import os
import re

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from pathlib import Path
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from playwright.sync_api import Browser

from deployments.choices import RunKind, TicketStatus
from deployments.models import ApiKey, Environment, TerraformRun, Ticket
from deployments.pages import urls as page_urls
from tests.helpers.axe import (
    DESKTOP,
    PHONE,
    axe_violations,
    horizontal_overflow,
    overflowing_elements,
)
from tests.helpers.browser import sign_in
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.review import demo_users, realistic_portal, ticket_under_review
from tests.helpers.stacks import sample_stacks

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
        TicketStatus.APPROVED,
        TicketStatus.REJECTED,
        TicketStatus.CANCELLED,
        TicketStatus.ROLLED_BACK,
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
        "/calendar/?view=month",
        "/stacks/",
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
    refused = [
        "/notifications/",  # 403: the portal's own page, naming why
        *([f"/tickets/{deployed.pk}/rollback/"] if deployed else []),  # may not roll back prod
    ]
    return {
        "dev1": [
            *common,
            *refused,
            "/tickets/new/",
            *(f"/tickets/{pk}/" for pk in shown),
            f"/tickets/{review.pk}/cancel/confirm/",
            f"/tickets/{shown[1]}/cancel/confirm/",  # past cancelling: says so
            "/accounts/logout/",
        ],
        "techlead1": [
            "/",
            f"/tickets/{review.pk}/",
            "/audit/",
            "/notifications/",
            "/environments/prod/history/",
            *([f"/runs/{apply.pk}/"] if apply else []),
        ],
        "ops1": [
            "/",
            "/stacks/",
            *(f"/tickets/{pk}/" for pk in shown[1:3]),
            *([f"/tickets/{deployed.pk}/rollback/"] if deployed else []),
        ],
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


# The routes of deployments/pages/urls.py that answer no HTML page of their own: actions
# (POST, then back to a page listed above), JSON and the calendar feed.
NOT_PAGES = {
    "ticket_new_preview": "JSON for the new-ticket form's preview",
    "ticket_plan": "POST",
    "ticket_cancel": "POST (its confirmation is a page)",
    "ticket_replan_reschedule": "POST",
    "ticket_approve": "POST",
    "ticket_reject": "POST",
    "ticket_deploy": "POST",
    "ticket_schedule": "POST",
    "ticket_unschedule": "POST",
    "calendar_token": "POST",
    "calendar_feed": "text/calendar",
    "evidence_upload": "POST",
    "evidence_withdraw": "POST",
    "evidence_signoff": "POST",
    "checklist_sign": "POST",
    "alarm_acknowledge": "POST",
    "ticket_complete": "POST",
    "policy_override": "POST",
    "run_log": "JSON for the live log",
    "freeze_declare": "POST",
    "freeze_lift": "POST",
    "follow_up_complete": "POST",
    "notification_retry": "POST",
    "timezone_guess": "POST",
}


def _portal_routes() -> set[str]:
    """The names of deployments/pages/urls.py's routes."""
    return {p.name for p in page_urls.urlpatterns if p.name}


def _route(url: str) -> str:
    try:
        return resolve(url.split("?")[0]).url_name or ""
    except Resolver404:
        return ""


def _check(page: Any, url: str, problems: list[str], width: int) -> int:
    """Opens the page and audits it; its HTTP status."""
    response = page.goto(url)
    _audit(page, url, problems, width)
    return int(response.status) if response is not None else 0


def _audit(page: Any, url: str, problems: list[str], width: int) -> None:
    """The page as it is now: no axe violation, no sideways scroll."""
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


def _after_posting(page: Any, base: str, problems: list[str], width: int) -> None:
    """The pages a developer sees after posting a form: a new token, once; the new-ticket
    form refused, with an error per field."""
    page.goto(f"{base}/settings/tokens/new/")
    page.locator("input[name=name]").fill(f"laptop {width}")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url("**/settings/tokens/**")
    assert page.locator("code").first.is_visible()
    _audit(page, "/settings/tokens/new/ (created)", problems, width)
    page.goto(f"{base}/tickets/new/")
    page.locator("select[name=environment]").select_option("prod")
    page.get_by_role("button", name="File ticket and plan").click()
    page.wait_for_load_state("load")
    assert page.locator(".field.has-error").count() > 1
    _audit(page, "/tickets/new/ (refused)", problems, width)


def _signed_out(page: Any, base: str, problems: list[str], width: int) -> None:
    """What someone not signed in sees: sign-in (and refused), the API docs, password reset,
    sign-up (closed), and the 500 page as the server sends it."""
    for url in ("/accounts/login/", "/api/docs/", "/accounts/password/reset/", "/accounts/signup/"):
        _check(page, base + url, problems, width)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill("dev1")
    page.locator("input[name=password]").fill("not the password")
    page.locator("form").filter(has=page.locator("input[name=password]")).locator(
        "button[type=submit]"
    ).click()
    page.wait_for_load_state("load")
    _audit(page, "/accounts/login/ (refused)", problems, width)
    # The 500 page is rendered without a request (handler500); served here as it would be.
    html = render_to_string("500.html")
    page.route(
        f"{base}/broken/",
        lambda route: route.fulfill(status=500, body=html, content_type="text/html"),
    )
    _check(page, f"{base}/broken/", problems, width)


def test_every_page_has_no_axe_violation_and_no_sideways_scroll(
    chromium: Browser, live_server: Any
) -> None:
    users = demo_users()
    realistic_portal(users)
    review = ticket_under_review(users["dev1"], users["techlead1"])
    from deployments.services.apikeys import api_key_create

    api_key_create(actor=users["admin"], user=users["admin"], name="CI")
    # A second and a third stack, one deployed to staging: the stacks page has layers.
    network, _app = sample_stacks(users["devopslead1"])
    DeploymentFactory(
        ticket=TicketFactory(
            environment=Environment.objects.get(name="staging"),
            stack=network,
            author=users["dev1"],
            status=TicketStatus.COMPLETED,
            title="Widen the VPC",
        )
    )
    pages = _pages(review)
    routes = {_route(url) for urls in pages.values() for url in urls}
    missing = _portal_routes() - routes - set(NOT_PAGES)
    assert not missing, f"pages not checked: {sorted(missing)}"
    problems: list[str] = []
    statuses: dict[tuple[str, str], int] = {}
    for viewport in (DESKTOP, PHONE):
        width = viewport["width"]
        for username, urls in pages.items():
            context = chromium.new_context(viewport=viewport, bypass_csp=True)
            context.set_default_timeout(20_000)
            page = context.new_page()
            try:
                sign_in(page, live_server.url, username)
                for url in urls:
                    statuses[username, url] = _check(page, live_server.url + url, problems, width)
                if username == "dev1":
                    _after_posting(page, live_server.url, problems, width)
            finally:
                context.close()
        context = chromium.new_context(viewport=viewport, bypass_csp=True)
        context.set_default_timeout(20_000)
        page = context.new_page()
        try:
            _signed_out(page, live_server.url, problems, width)
        finally:
            context.close()
    assert len(statuses) > 45
    assert statuses["dev1", "/notifications/"] == 403
    assert statuses["dev1", "/no-such-page/"] == 404
    if problems:
        (Path(os.environ.get("AXE_REPORT", "/dev/null"))).write_text("\n".join(problems))
    assert not problems, "\n".join(problems)


def test_what_is_not_a_page_is_an_action(client: Any, django_user_model: Any) -> None:
    """The routes NOT_PAGES leaves out as POST answer a GET with 405: no page hides there."""
    client.force_login(django_user_model.objects.create_user("someone", password="pw"))
    posts = {name for name, why in NOT_PAGES.items() if why.startswith("POST")}
    checked = set()
    for pattern in page_urls.urlpatterns:
        if pattern.name in posts:
            url = "/" + re.sub(r"<(?:int|slug):(\w+)>", "1", str(pattern.pattern))
            assert client.get(url).status_code == 405, url
            checked.add(pattern.name)
    assert checked == posts
