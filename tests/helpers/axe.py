"""axe-core (tests/browser/vendor/axe.min.js, vendored from npm) injected into a page by
the browser tests only, and the checks every page meets: no axe violation, no page-wide
horizontal scroll."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.helpers.paths import ROOT

AXE = ROOT / "tests" / "browser" / "vendor" / "axe.min.js"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def axe_violations(
    page: Page, *, exclude: tuple[str, ...] = (), disable: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (WCAG 2.x A/AA and best practices), each
    with its rule id, help text and the first few offending nodes."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async ([exclude, disable]) => {
          const context = exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
          const rules = Object.fromEntries(disable.map((id) => [id, { enabled: false }]));
          const r = await window.axe.run(context, { resultTypes: ["violations"], rules });
          return r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(
              (n) => n.target.join(" ") + " :: " + (n.failureSummary || "")),
          }));
        }""",
        [list(exclude), list(disable)],
    )
    return list(result)


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page scrolls sideways (0: none)."""
    return int(
        page.evaluate(
            "() => Math.max(0, document.scrollingElement.scrollWidth - window.innerWidth)"
        )
    )


def overflowing_elements(page: Page) -> list[str]:
    """The elements that stick out past the viewport's right edge (for the failure message)."""
    return list(
        page.evaluate(
            """() => {
              const w = window.innerWidth, out = [];
              for (const el of document.querySelectorAll("body *")) {
                const r = el.getBoundingClientRect();
                if (r.right > w + 1 && r.width > 0) {
                  out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                    (typeof el.className === "string" && el.className
                      ? "." + el.className.split(" ").join(".") : "") +
                    " right=" + Math.round(r.right));
                }
                if (out.length > 12) break;
              }
              return out;
            }"""
        )
    )
