"""How fast ``verify_audit`` walks a long chain, on SQLite and on PostgreSQL.

    .venv/bin/python -m benchmarks.audit_bench [--quick]

For each configuration a child process (its own Django settings) uses a test database
of its own (``test_<name>``, kept between runs under var/bench/; the configured database
is never touched) holding a valid chain of 1M events (200k with ``ctx.quick``) hashed
exactly as audit_record hashes them (bulk-inserted when the kept one holds another count),
times services.audit.audit_check() and reports events/s, the seconds for
the walk and the projection to 1M events. The target is "1M events well under a minute":
≤ 30 s. PostgreSQL is measured when ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/ccp_bench``) answers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from benchmarks.common import ROOT, Context, Figure

FULL_EVENTS = 1_000_000
QUICK_EVENTS = 200_000
TARGET_SECONDS_1M = 30.0
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/ccp_bench"


def _child(events: int) -> dict[str, float | int | str]:
    """Runs in the child process: build the chain, walk it, return the measurements."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from deployments.models import AuditChainHead, AuditEvent
    from deployments.services.audit import GENESIS_HASH, audit_check, canonical_hash

    # The chain is kept between runs (its test database under var/bench/): built again only
    # when it does not hold exactly ``events`` events.
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
    inserted = 0.0
    if AuditEvent.objects.count() != events or not AuditChainHead.objects.exists():
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        start = time.perf_counter()
        _build_chain(events, AuditEvent, AuditChainHead, GENESIS_HASH, canonical_hash)
        inserted = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    report = audit_check()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not report.ok:
        raise SystemExit(report.message)
    # Memory on a second pass: tracing slows Python down, so it is not timed.
    tracemalloc.start()
    audit_check()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "vendor": connection.vendor,
        "events": report.count,
        "seconds": elapsed,
        "cpu": cpu,
        "insert_seconds": inserted,
        "peak_mb": peak / 1e6,
    }


def _build_chain(
    events: int, event_model: Any, head_model: Any, genesis: str, canonical_hash: Any
) -> None:
    """A valid chain of ``events`` events, hashed exactly as audit_record hashes them."""
    prev = genesis
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batch: list[Any] = []
    for i in range(events):
        data = {"run": i, "kind": "plan", "status": "succeeded", "note": "x" * 40}
        event = event_model(
            at=at + dt.timedelta(milliseconds=i),
            actor_name="worker",
            action="run.finish",
            data=data,
            prev_hash=prev,
        )
        event.hash = prev = canonical_hash(
            at=event.at,
            actor_id=None,
            actor_name="worker",
            action="run.finish",
            ticket_id=None,
            data=data,
            prev_hash=prev,
        )
        batch.append(event)
        if len(batch) == 5000:
            event_model.objects.bulk_create(batch)
            batch = []
    event_model.objects.bulk_create(batch)
    head_model.objects.update_or_create(pk=1, defaults={"last_hash": prev})


def _measure(configuration: str, events: int) -> dict[str, float | int | str] | None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["SECRET_KEY"] = "bench-only"
    work = ROOT / "var" / "bench" / f"audit-{configuration}"  # the kept chain's SQLite file
    work.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(work)
    if configuration == "server":
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.audit_bench", "--child", str(events)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if configuration == "server":
            return None  # no PostgreSQL here: the figure says so
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Figure]:
    events = QUICK_EVENTS if ctx.quick else FULL_EVENTS
    figures: list[Figure] = []
    for configuration in ctx.configurations:
        label = "SQLite" if configuration == "embedded" else "PostgreSQL"
        result = _measure(configuration, events)
        if result is None:
            figures.append(
                Figure(name=f"verify_audit, {label}", value="not measured", note="no server")
            )
            continue
        seconds, count = float(result["seconds"]), int(result["events"])
        rate = count / seconds
        projected = FULL_EVENTS / rate
        figures.append(
            Figure(
                name=f"verify_audit {count:,} events, {label}",
                value=f"{seconds:.1f} s ({rate:,.0f} events/s)",
                baseline=f"1M projected {projected:.1f} s",
                ratio=projected / TARGET_SECONDS_1M,
                target=f"1M ≤ {TARGET_SECONDS_1M:.0f} s",
                met=projected <= TARGET_SECONDS_1M,
                note=(
                    f"CPU {float(result['cpu']):.1f} s, peak Python memory "
                    f"{float(result['peak_mb']):.1f} MB, "
                    + (
                        f"insert {float(result['insert_seconds']):.0f} s"
                        if float(result["insert_seconds"])
                        else "chain kept from an earlier run"
                    )
                ),
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    for figure in run(Context(quick=args.quick)):
        print(f"{figure.name}: {figure.value}; {figure.baseline}; target {figure.target}")
        print(f"  met={figure.met} {figure.note}")


if __name__ == "__main__":
    main()
