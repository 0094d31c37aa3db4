"""Whether the ticket list still needs ``api/support/fastrep.py``: the same rows built by
DRF (``TicketSerializer(rows, many=True).data``) and by fastrep (``compile_rows`` over the
same serializer), and the whole ``GET /api/v1/tickets/`` beside them.

    .venv/bin/python -m benchmarks.serializer_bench [--quick]

A child process (its own Django settings, SQLite under var/bench/serializer) seeds the demo
and ``seed_demo``-style history (600 tickets; ``--quick``: 200), reads a page of 50 and one
of 200 tickets as operations sees them (with their last known good attached, as the list
does), checks that both builders give the same rows, and times each (median of repeats).
fastrep stays only while it saves a real share of the request: the figure's target is that
it saves at least 10 % of ``GET /api/v1/tickets/`` (50 rows); otherwise the list should use
DRF's own path (TicketSerializer stays the one definition of the rows either way, and
tests/api/test_lists.py checks that both give the same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import ROOT, Context, Figure

FULL_TICKETS = 600
QUICK_TICKETS = 200
REPEATS = 40
QUICK_REPEATS = 5
# fastrep stays while it saves at least this share of the list request.
TARGET_SHARE = 0.10


def _timed(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child(tickets: int, repeats: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import random

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

    from deployments import selectors
    from deployments.api.shapes.tickets import TicketSerializer
    from deployments.api.support.fastrep import compile_rows
    from deployments.services import seeding

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
    if not User.objects.filter(username="ops1").exists():
        from django.conf import settings

        settings.EMBEDDED = True
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    users = {u.username: u for u in User.objects.all()}
    seeding.seed_history(tickets, users, random.Random(tickets))
    ops = users["ops1"]
    request = APIRequestFactory().get("/api/v1/tickets/")
    force_authenticate(request, ops)
    from rest_framework.request import Request

    drf_request = Request(request)
    drf_request.user = ops
    out: dict[str, Any] = {"tickets": selectors.ticket_list(ops).count()}
    for size in (50, 200):
        rows = list(selectors.ticket_list(ops)[:size])
        selectors.attach_last_known_good(rows)
        named = [t.rollback_of_id for t in rows]
        named += [g.ticket_id for t in rows if (g := selectors.ticket_last_known_good(t))]
        selectors.visible_ticket_ids(ops, named)
        context = {"request": drf_request}

        def drf(rows: list[Any] = rows, context: dict[str, Any] = context) -> Any:
            return TicketSerializer(rows, many=True, context=context).data

        def fast(rows: list[Any] = rows, context: dict[str, Any] = context) -> Any:
            return compile_rows(TicketSerializer(context=context))(rows)

        same = json.loads(json.dumps(drf(), default=str)) == json.loads(
            json.dumps(fast(), default=str)
        )
        out[f"rows{size}"] = {
            "same": same,
            "drf": _timed(drf, repeats),
            "fastrep": _timed(fast, repeats),
        }
    client = APIClient()
    client.force_authenticate(ops)
    warm = client.get("/api/v1/tickets/", HTTP_HOST="127.0.0.1")
    assert warm.status_code == 200, (warm.status_code, warm.content[:300])
    out["request"] = _timed(lambda: client.get("/api/v1/tickets/", HTTP_HOST="127.0.0.1"), repeats)
    return out


def _measure(tickets: int, repeats: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    work = ROOT / "var" / "bench" / "serializer"
    work.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(work)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.serializer_bench",
            "--child",
            str(tickets),
            str(repeats),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(ctx: Context) -> list[Figure]:
    result = _measure(
        QUICK_TICKETS if ctx.quick else FULL_TICKETS, QUICK_REPEATS if ctx.quick else REPEATS
    )
    figures = []
    for size in (50, 200):
        row = result[f"rows{size}"]
        saved = row["drf"] - row["fastrep"]
        note = "same rows" if row["same"] else "ROWS DIFFER"
        if size == 50:
            share = saved / result["request"]
            figures.append(
                Figure(
                    name="fastrep's saving on GET /api/v1/tickets/ (50 rows)",
                    value=f"{saved * 1000:.1f} ms of {result['request'] * 1000:.1f} ms "
                    f"({share:.0%})",
                    baseline=f"rows: DRF {row['drf'] * 1000:.1f} ms, "
                    f"fastrep {row['fastrep'] * 1000:.1f} ms",
                    ratio=row["drf"] / row["fastrep"],
                    target=f">= {TARGET_SHARE:.0%} of the request (else DRF's own path)",
                    met=share >= TARGET_SHARE and row["same"],
                    note=f"{note}; in-process, SQLite, {result['tickets']:,} tickets",
                )
            )
        else:
            figures.append(
                Figure(
                    name=f"ticket list rows, DRF vs fastrep ({size} rows)",
                    value=f"DRF {row['drf'] * 1000:.1f} ms",
                    baseline=f"fastrep {row['fastrep'] * 1000:.1f} ms",
                    ratio=row["drf"] / row["fastrep"],
                    note=note,
                )
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    for figure in run(Context(quick=args.quick)):
        print(f"{figure.name}: {figure.value}; {figure.baseline}; ratio {figure.ratio:.2f}")
        print(f"  target {figure.target}: met={figure.met}; {figure.note}")


if __name__ == "__main__":
    main()
