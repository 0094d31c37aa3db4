"""Content-Security-Policy: no inline script or style in any template, the header on every
page, and no violation in a real Chromium on the portal's pages, allauth's and the admin's."""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in this thread (see test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from deployments.models import Environment
from tests.helpers.csp import Watcher
from tests.helpers.paths import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))

# What a policy without 'unsafe-inline' blocks: <script> without src, <style>, style="",
# inline event handlers, javascript: URLs.
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_exist() -> None:
    names = {p.relative_to(ROOT / "templates").as_posix() for p in TEMPLATES}
    assert {"base.html", "account/login.html", "allauth/layouts/base.html"} <= names


@pytest.mark.parametrize(
    "template", TEMPLATES, ids=lambda p: p.relative_to(ROOT / "templates").as_posix()
)
def test_no_inline_script_or_style_in_templates(template: Path) -> None:
    text = template.read_text()
    found = [f"{what}: {m.group(0)!r}" for pattern, what in INLINE for m in pattern.finditer(text)]
    assert found == [], f"{template.relative_to(ROOT)} has {found}"


def test_the_inline_detector_catches_each_kind() -> None:
    samples = [
        "<script>alert(1)</script>",
        "<style>p{}</style>",
        '<p style="color:red">',
        '<a onclick="x()">',
        '<a href="javascript:x()">',
    ]
    for sample, (pattern, _) in zip(samples, INLINE, strict=True):
        assert pattern.search(sample)
    assert not INLINE[0][0].search('<script src="/static/portal.js" defer></script>')


@pytest.mark.django_db
def test_every_page_carries_the_policy() -> None:
    response = Client().get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    directives = dict(
        [*part.split(" ", 1), ""][:2] for part in (p.strip() for p in policy.split(";")) if part
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


# --- in a real browser -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_csp_violation_on_the_main_pages(chromium: Any, live_server: Any) -> None:
    from tests.helpers.tickets import awaiting

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    root.groups.set(Group.objects.filter(name__in=["developer", "tech_lead"]))
    author = User.objects.create_user("alice", password="pw")
    author.groups.set(Group.objects.filter(name="developer"))
    ticket = awaiting("prod", author)
    base = live_server.url
    context = chromium.new_context()
    try:
        page = context.new_page()
        watcher = Watcher(page)
        assert watcher.visit(f"{base}/accounts/login/") == []
        page.locator("input[name=login]").fill("root")
        page.locator("input[name=password]").fill("pw")
        page.locator("form").filter(has=page.locator("input[name=password]")).locator(
            "button[type=submit]"
        ).click()
        page.wait_for_url(f"{base}/")
        group = Group.objects.get(name="tech_lead")
        env = Environment.objects.get(name="prod")
        pages = [
            "/",
            "/tickets/new/",
            "/environments/",
            f"/tickets/{ticket.pk}/",
            "/audit/",
            "/accounts/2fa/",
            "/accounts/2fa/totp/activate/",
            "/accounts/reauthenticate/",
            "/accounts/password/change/",
            "/admin/",
            "/admin/deployments/ticket/",
            f"/admin/deployments/environment/{env.pk}/change/",
            f"/admin/auth/group/{group.pk}/change/",
            f"/admin/auth/user/{root.pk}/change/",
            "/admin/deployments/apikey/",
        ]
        violations = {path: watcher.visit(base + path) for path in pages}
        assert {path: v for path, v in violations.items() if v} == {}
        # The admin's scripts run under the policy: the group's people picker is built by
        # SelectFilter2.js.
        watcher.visit(f"{base}/admin/auth/group/{group.pk}/change/")
        assert page.locator(".selector-available, .selector-chosen").count() >= 2
        # The watcher does see violations: an injected inline style and script are blocked.
        page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>');"
            "const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
            "document.body.appendChild(s);"
        )
        page.wait_for_timeout(200)
        blocked: list[str] = page.evaluate("window.__cspViolations")
        assert any(v.startswith("style-src") for v in blocked), blocked
        assert any(v.startswith("script-src") for v in blocked), blocked
        assert page.evaluate("window.__ran") is None
    finally:
        context.close()
