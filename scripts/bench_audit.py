"""Benchmark: how fast `verify_audit` walks a long chain, in a throwaway database.

    .venv/bin/python scripts/bench_audit.py [--events 200000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python scripts/bench_audit.py

Creates a test database next to the configured one (``test_<name>``, dropped at the
end; the configured database is never touched), bulk-inserts a valid chain of N events
hashed exactly as audit_record hashes them, then times services.audit_check() and
prints events/s, the projected time for 1M events and the peak memory it added.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from deployments.models import AuditChainHead, AuditEvent
    from deployments.services.audit import GENESIS_HASH, audit_check, canonical_hash

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        start = time.perf_counter()
        prev = GENESIS_HASH
        at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        batch: list[AuditEvent] = []
        for i in range(args.events):
            data = {"run": i, "kind": "plan", "status": "succeeded", "note": "x" * 40}
            event = AuditEvent(
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
                prev_hash=event.prev_hash,
            )
            batch.append(event)
            if len(batch) == 5000:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
        AuditChainHead.objects.update_or_create(pk=1, defaults={"last_hash": prev})
        print(f"inserted {args.events} events in {time.perf_counter() - start:.1f} s")

        start, cpu = time.perf_counter(), time.process_time()
        report = audit_check()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert report.ok, report.message
        rate = report.count / elapsed
        print(f"{connection.vendor}: verified {report.count} events in {elapsed:.1f} s")
        print(f"  {rate:,.0f} events/s; 1M events ≈ {1_000_000 / rate:.0f} s")
        # On a shared machine wall time includes waiting for a core; this is the work.
        print(f"  verifier CPU time {cpu:.1f} s ({report.count / cpu:,.0f} events per CPU-s)")
        # Memory on a second pass: tracing slows Python down, so it is not timed.
        tracemalloc.start()
        audit_check()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  peak Python memory while verifying: {peak / 1e6:.1f} MB")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
