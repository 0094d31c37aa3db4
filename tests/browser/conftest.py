"""Fixtures of the browser tests: a page with live logs recorded, a paced worker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.helpers.browser import (
    LIVE_LOG_RECORDER,
    TERRAFORM_PAUSE_SECONDS,
    LiveLogs,
    LiveServerConnections,
)
from tests.helpers.waiting import paced_terraform


@pytest.fixture(autouse=True)
def _live_server_settles(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every browser test's database is flushed only once the live server has answered
    everything its pages sent (set up after the database, so torn down before it, and
    after the test's own page fixtures, which close the browser)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    server = request.getfixturevalue("live_server")
    connections = LiveServerConnections.of(server.thread.httpd)
    yield
    if not connections.settle(server.url):
        print(f"live server: {connections.open} connection(s) still open after 30 s")


@pytest.fixture
def paced_worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> subprocess.Popen[bytes]:
    """The real Celery worker running the real Terraform, except that `terraform plan` and
    `terraform apply` wait a few seconds before they start, as they would on a real cloud.

    On the offline sample stack an apply takes about half a second: it starts and ends
    between two polls of the ticket page, which then never shows it live.
    """
    paced_terraform(
        tmp_path, monkeypatch, commands=("plan", "apply"), seconds=TERRAFORM_PAUSE_SECONDS
    )
    worker: subprocess.Popen[bytes] = request.getfixturevalue("celery_worker_process")
    return worker


@pytest.fixture
def live_logs() -> LiveLogs:
    return LiveLogs()


@pytest.fixture
def page(chromium: Browser, live_logs: LiveLogs) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.expose_function("ccpRecordLiveLog", live_logs.record)
    context.add_init_script(LIVE_LOG_RECORDER)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
