"""Driving Chromium: signing in, following live logs."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect

RUN_TIMEOUT_MS = 120_000
# How long the paced worker's Terraform waits before plan and apply (browser/conftest.py).
TERRAFORM_PAUSE_SECONDS = 3


# Installed in every page before its own scripts: reports what `#live-log` holds when the
# page is parsed and after each text portal.js appends to it, under the log URL of the run it
# was following when that text arrived. portal.js appends a run's last lines and moves to the
# next run in one task, so one observer callback can carry both: the records say which
# appends came before the URL changed (the attribute record's old value).
LIVE_LOG_RECORDER = """
document.addEventListener("DOMContentLoaded", () => {
  const pre = document.getElementById("live-log");
  if (!pre) { return; }
  let shown = pre.textContent;
  window.ccpRecordLiveLog(pre.getAttribute("data-log-url"), "load", shown);
  new MutationObserver((records) => {
    const urls = records.filter((r) => r.type === "attributes").map((r) => r.oldValue);
    urls.push(pre.getAttribute("data-log-url"));
    let current = 0;
    for (const record of records) {
      if (record.type === "attributes") { current += 1; continue; }
      for (const node of record.addedNodes) { shown += node.textContent; }
      window.ccpRecordLiveLog(urls[current], "append", shown);
    }
  }).observe(pre, {
    childList: true,
    attributes: true, attributeFilter: ["data-log-url"], attributeOldValue: true,
  });
});
"""


class LiveLogs:
    """Everything `#live-log` showed, per run log URL, in the order it was seen."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, str]]] = {}
        self.order: list[tuple[str, str]] = []  # (url, text), across runs, as seen

    def record(self, url: str, how: str, text: str) -> None:
        self.seen.setdefault(url, []).append((how, text))
        self.order.append((url, text))

    def streamed(self, needle: str) -> tuple[str, list[tuple[str, str]]]:
        """The run whose log first showed ``needle``, and what it showed over time."""
        for url, text in self.order:
            if needle in text:
                return url, self.seen[url]
        raise AssertionError(f"no live log ever showed {needle!r}; saw {self.summary()}")

    def summary(self) -> dict[str, list[tuple[str, int]]]:
        return {url: [(how, len(text)) for how, text in s] for url, s in self.seen.items()}


def sign_in(page: Page, base_url: str, username: str, password: str = "pw") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form").filter(has=page.locator("input[name=password]")).locator(
        "button[type=submit]"
    ).click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator(".who")).to_contain_text(username)


class LiveServerConnections:
    """Counts the live server's open connections, from accept to close.

    A page's scripts talk to the server after a test's last assertion (static/timezone.js
    posts the browser's zone on the first page after sign-in). When the test ends the
    browser is closed, but the server thread goes on with that request, in a transaction,
    while the test's teardown flushes the database: the flush fails and the next test finds
    the last one's rows. ``settle`` waits until every connection the browser made is done.
    """

    def __init__(self, httpd: Any) -> None:
        self.open = 0
        self.changed = threading.Condition()
        process, shutdown = httpd.process_request, httpd.shutdown_request

        def counted_process(request: Any, client_address: Any) -> None:
            with self.changed:
                self.open += 1
            process(request, client_address)  # on error the server calls shutdown_request

        def counted_shutdown(request: Any) -> None:
            try:
                shutdown(request)
            finally:
                with self.changed:
                    self.open = max(0, self.open - 1)
                    self.changed.notify_all()

        httpd.process_request = counted_process
        httpd.shutdown_request = counted_shutdown

    @classmethod
    def of(cls, httpd: Any) -> LiveServerConnections:
        tracker: LiveServerConnections | None = getattr(httpd, "_ccp_connections", None)
        if tracker is None:
            tracker = cls(httpd)
            httpd._ccp_connections = tracker
        return tracker

    def settle(self, base_url: str, timeout: float = 30.0) -> bool:
        """After the browser is closed: one request of our own, accepted after every
        connection already queued (accept is first in, first out), then wait until none is
        open. False when some connection outlived ``timeout`` seconds."""
        probe = urllib.request.Request(f"{base_url}/healthz", headers={"Connection": "close"})
        try:
            with urllib.request.urlopen(probe, timeout=timeout):
                pass
        except OSError:
            pass
        with self.changed:
            return self.changed.wait_for(lambda: self.open == 0, timeout=timeout)
