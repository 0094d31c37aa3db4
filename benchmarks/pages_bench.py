"""Pages and API at 100,000 tickets: server-time p95 of each page against /healthz on the
same gunicorn, over HTTP on loopback, and the queries each page makes.

PAGES below is the one table of URLs: add a row for a new page (``{heavy}`` is a ticket
with 50 runs, ``{run}`` one of its runs, ``{deep_offset}``/``{deep_page}``/``{deep_cursor}``
90 % into the ticket list). A URL answering 404 (a page not merged yet) is skipped with a note.

Measured: PostgreSQL + Redis with ``seed_demo --tickets 100000`` (``--quick``: 5,000), and
SQLite embedded with 5,000 for comparison. Server time is gunicorn's own, from the
``Server-Timing`` header (deployments.lib.middleware.ServerTiming); the wall time the client
saw is reported beside it. Query counts come from a test-client pass on the same database.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from benchmarks import server
from benchmarks.common import Context, Figure, median, ms, percentile

TARGET_RATIO = 3.0
TARGET_SECONDS = 0.100
QUERY_BUDGET = 10
FULL_TICKETS = 100_000
QUICK_TICKETS = 5_000
VIEWER = "ops1"  # operations: sees every environment, so every list is at its longest


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    auth: str  # "page" (session cookie), "api" (API key) or "" (anonymous)


PAGES: list[Page] = [
    Page("home page", "/", "page"),
    Page("ticket list page, page 1", "/tickets/", "page"),
    Page("ticket list page, deep page", "/tickets/?page={deep_page}", "page"),
    Page("ticket page, 50 runs", "/tickets/{heavy}/", "page"),
    Page("run log", "/runs/{run}/log/", "page"),
    Page("environments page", "/environments/", "page"),
    Page("calendar", "/calendar/", "page"),
    Page("audit list", "/audit/", "page"),
    Page("metrics page", "/metrics/", "page"),
    Page("deployment history page (prod)", "/environments/prod/history/", "page"),
    Page("notification log", "/notifications/", "page"),
    Page("GET /api/v1/tickets/", "/api/v1/tickets/", "api"),
    Page("GET /api/v1/tickets/ deep (offset)", "/api/v1/tickets/?offset={deep_offset}", "api"),
    Page("GET /api/v1/tickets/ deep (cursor)", "/api/v1/tickets/?cursor={deep_cursor}", "api"),
    Page("GET /api/v1/tickets/?environment=prod", "/api/v1/tickets/?environment=prod", "api"),
    Page("GET /api/v1/tickets/{id}/ (50 runs)", "/api/v1/tickets/{heavy}/", "api"),
    Page("GET /api/v1/environments/", "/api/v1/environments/", "api"),
    Page("GET /api/v1/audit/", "/api/v1/audit/", "api"),
    Page("GET /api/v1/metrics/", "/api/v1/metrics/", "api"),
    Page("GET /api/v1/deployments/", "/api/v1/deployments/", "api"),
    Page("GET /api/v1/me/queue/", "/api/v1/me/queue/", "api"),
]
BASELINE = Page("/healthz", "/healthz", "")


def _headers(page: Page, login: dict[str, str]) -> dict[str, str]:
    if page.auth == "api":
        return {"Authorization": f"Token {login['token']}", "Accept": "application/json"}
    if page.auth == "page":
        return {"Cookie": login["cookie"]}
    return {}


def _sample(
    port: int, page: Page, path: str, login: dict[str, str], n: int
) -> tuple[int, list[float], list[float]]:
    """(status, server times, wall times) of n GETs after two warm-ups, one connection."""
    import time

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = _headers(page, login)
    try:
        for _ in range(2):
            status, _, _ = server.request(port, path, headers, conn)
        own: list[float] = []
        wall: list[float] = []
        for _ in range(n):
            started = time.perf_counter()
            status, took, _ = server.request(port, path, headers, conn)
            wall.append(time.perf_counter() - started)
            own.append(took if took is not None else wall[-1])
        return status, own, wall
    finally:
        conn.close()


def measure(setup: server.Setup, samples: int) -> list[Figure]:
    seeded = server.prepare(setup)
    login = server.helper(setup, "login", {"username": VIEWER})
    facts = server.helper(setup, "facts", {})
    paths = {page.name: page.path.format(**facts) for page in PAGES}
    counts = server.helper(
        setup,
        "queries",
        {**login, "pages": [[p.name, paths[p.name], p.auth] for p in PAGES]},
    )
    label = f"{setup.name}, {facts['tickets']:,} tickets"
    figures = [
        Figure(
            f"pages [{label}]: database ready (migrate + seed_demo, cached)",
            f"{seeded:.1f} s",
            note="seeding runs only when the database has fewer seeded tickets",
        )
    ]
    with server.gunicorn(setup, workers=2, threads=1) as srv:
        status, base_own, base_wall = _sample(srv.port, BASELINE, BASELINE.path, login, samples)
        base = percentile(base_own, 95)
        figures.append(
            Figure(
                f"pages [{label}]: /healthz server p95",
                ms(base),
                note=f"p50 {ms(median(base_own))}, wall p95 {ms(percentile(base_wall, 95))}",
            )
        )
        for page in PAGES:
            path = paths[page.name]
            status, own, wall = _sample(srv.port, page, path, login, samples)
            if status == 404 or counts.get(page.name) is None:
                figures.append(
                    Figure(
                        f"pages [{label}]: {page.name}",
                        "skipped",
                        note=f"{path} answers 404 here (not merged yet?)",
                    )
                )
                continue
            p95 = percentile(own, 95)
            ratio = p95 / base if base else None
            queries = counts[page.name]
            met = (
                status == 200
                and ratio is not None
                and ratio <= TARGET_RATIO
                and p95 <= TARGET_SECONDS
                and queries is not None
                and queries <= QUERY_BUDGET
            )
            figures.append(
                Figure(
                    f"pages [{label}]: {page.name}",
                    f"p95 {ms(p95)} (p50 {ms(median(own))}, wall p95 "
                    f"{ms(percentile(wall, 95))}), {queries} queries",
                    baseline=f"/healthz {ms(base)}",
                    ratio=ratio,
                    target=f"≤ {TARGET_RATIO:g}x /healthz, ≤ {TARGET_SECONDS * 1000:.0f} ms, "
                    f"≤ {QUERY_BUDGET} queries",
                    met=met,
                    note="" if status == 200 else f"HTTP {status} for {path}",
                )
            )
    return figures


def run(ctx: Context) -> list[Figure]:
    samples = 10 if ctx.quick else 20
    figures: list[Figure] = []
    if "server" in ctx.configurations:
        pg = server.postgres_setup(ctx, QUICK_TICKETS if ctx.quick else FULL_TICKETS)
        if pg is not None:
            figures += measure(pg, samples)
    if "embedded" in ctx.configurations:
        figures += measure(server.sqlite_setup(ctx, QUICK_TICKETS), samples)
    return figures
