"""Throughput on loopback: gunicorn with 2 and 4 workers, requests/s for the ticket list API
against /healthz on the same server, and the errors seen (target: none).

A small threaded load script (keep-alive connections, CLIENTS threads for DURATION seconds
per URL) rather than locust: same figures, no extra process tree to manage. Runs on the
PostgreSQL database pages_bench seeded (100,000 tickets; --quick: 5,000), or on the
embedded SQLite one when PostgreSQL is not reachable.
"""

from __future__ import annotations

import http.client
import threading
import time

from . import server
from .common import Context, Figure
from .pages_bench import FULL_TICKETS, QUICK_TICKETS, VIEWER

CLIENTS = 8
WORKERS = (2, 4)


def _load(port: int, path: str, headers: dict[str, str], seconds: float) -> tuple[int, int]:
    """(successful requests, errors) from CLIENTS threads hammering ``path``."""
    done = [0] * CLIENTS
    errors = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop:
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    done[i] += 1
                else:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), sum(errors)


def run(ctx: Context) -> list[Figure]:
    seconds = 4.0 if ctx.quick else 8.0
    setup = None
    if "server" in ctx.configurations:
        setup = server.postgres_setup(ctx, QUICK_TICKETS if ctx.quick else FULL_TICKETS)
    if setup is None:
        setup = server.sqlite_setup(ctx, QUICK_TICKETS)
    server.prepare(setup)
    login = server.helper(setup, "login", {"username": VIEWER})
    api = {"Authorization": f"Token {login['token']}", "Accept": "application/json"}
    figures: list[Figure] = []
    label = f"{setup.name}, {setup.tickets:,} tickets"
    for workers in WORKERS:
        with server.gunicorn(setup, workers=workers, threads=1) as srv:
            _load(srv.port, "/healthz", {}, 1.0)  # warm every worker
            base_ok, base_err = _load(srv.port, "/healthz", {}, seconds)
            list_ok, list_err = _load(srv.port, "/api/v1/tickets/", api, seconds)
        base_rps, list_rps = base_ok / seconds, list_ok / seconds
        figures.append(
            Figure(
                f"load [{label}]: GET /api/v1/tickets/, gunicorn {workers} workers",
                f"{list_rps:.1f} req/s, {list_err} errors",
                baseline=f"/healthz {base_rps:.1f} req/s, {base_err} errors",
                # Here higher is better: the ratio is the list's share of /healthz's rate.
                ratio=list_rps / base_rps if base_rps else None,
                target="0 errors",
                met=list_err == 0 and base_err == 0,
                note=f"{CLIENTS} client threads for {seconds:g} s each; ratio = list/healthz "
                "(higher is better)",
            )
        )
    return figures
