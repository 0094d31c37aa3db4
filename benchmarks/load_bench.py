"""Throughput on loopback: gunicorn with 2 and 4 workers, requests/s for the ticket list API
against /healthz on the same server, and the errors seen (target: none).

The load is locust's (headless, in its own process: benchmarks/locustfile.py), CLIENTS
users asking as fast as they are answered for DURATION seconds per URL. Runs on the
PostgreSQL database pages_bench seeded (100,000 tickets; --quick: 5,000), or on the
embedded SQLite one when PostgreSQL is not reachable.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import server
from benchmarks.common import Context, Figure
from benchmarks.pages_bench import FULL_TICKETS, QUICK_TICKETS, VIEWER

CLIENTS = 8
WORKERS = (2, 4)
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _load(port: int, path: str, auth: str, seconds: float) -> tuple[int, int]:
    """(successful requests, errors) from locust's CLIENTS users asking for ``path``."""
    with tempfile.TemporaryDirectory() as work:
        prefix = str(Path(work) / "load")
        subprocess.run(
            [
                str(Path(sys.executable).with_name("locust")),
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--users",
                str(CLIENTS),
                "--spawn-rate",
                str(CLIENTS),
                "--run-time",
                f"{seconds:g}s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "ERROR",
            ],
            env={**os.environ, "BENCH_LOAD_PATH": path, "BENCH_LOAD_AUTH": auth},
            check=False,  # locust exits 1 when a request failed: counted below
            capture_output=True,
            timeout=seconds + 120,
        )
        with open(f"{prefix}_stats.csv", newline="") as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    failures = int(total["Failure Count"])
    return int(total["Request Count"]) - failures, failures


def run(ctx: Context) -> list[Figure]:
    seconds = 4.0 if ctx.quick else 8.0
    setup = None
    if "server" in ctx.configurations:
        setup = server.postgres_setup(ctx, QUICK_TICKETS if ctx.quick else FULL_TICKETS)
    if setup is None:
        setup = server.sqlite_setup(ctx, QUICK_TICKETS)
    server.prepare(setup)
    login = server.helper(setup, "login", {"username": VIEWER})
    auth = f"Token {login['token']}"
    figures: list[Figure] = []
    label = f"{setup.name}, {setup.tickets:,} tickets"
    for workers in WORKERS:
        # The per-user API throttle (600/min by default) would answer most of this load
        # 429: throughput is measured without it.
        with server.gunicorn(setup, workers=workers, threads=1, API_THROTTLE_RATE="off") as srv:
            _load(srv.port, "/healthz", "", 1.0)  # warm every worker
            base_ok, base_err = _load(srv.port, "/healthz", "", seconds)
            list_ok, list_err = _load(srv.port, "/api/v1/tickets/", auth, seconds)
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
                note=f"locust, {CLIENTS} users for {seconds:g} s each; ratio = list/healthz "
                "(higher is better)",
            )
        )
    return figures
