"""Watching a browser page for Content-Security-Policy violations."""

from __future__ import annotations

from typing import Any

# Installed before any page script: keeps every violation the page reports.
VIOLATION_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watcher:
    """A page that remembers CSP violations (events and console errors)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(VIOLATION_RECORDER)
        page.on(
            "console",
            lambda msg: (
                self.console.append(msg.text)
                if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text
                else None
            ),
        )

    def visit(self, url: str) -> list[str]:
        response = self.page.goto(url)
        assert response is not None and response.status < 400, (url, response and response.status)
        self.page.wait_for_load_state("networkidle")
        events: list[str] = self.page.evaluate("window.__cspViolations")
        found = events + self.console
        self.console = []
        return found
