"""What /healthz checks: the database, the broker and every storage, each for real and
none by writing (a load balancer asks every few seconds; a write per probe would fill
S3 with churn and its bill with PUTs).

Each probe raises on failure; the view answers ``ok``/``failed`` per part and logs the
detail (an error's text names hosts, roles and paths, which strangers must not read).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection


def database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker() -> None:
    from changecontrol.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


# The storages the portal writes: media (default), plan files, evidence.
STORAGE_ALIASES = ("default", "plans", "evidence")


def storage() -> None:
    seen: set[int] = set()
    for alias in STORAGE_ALIASES:
        backend = storages[alias]
        if id(backend) in seen:
            continue
        seen.add(id(backend))
        storage_reachable(backend, alias)


def storage_reachable(backend: Storage, alias: str) -> None:
    """Can the portal write here, asked without writing: an S3 bucket answers HeadBucket;
    a folder exists and is writable (or, not made yet, its nearest existing parent is);
    any other storage answers an exists() lookup."""
    bucket = getattr(backend, "bucket_name", None)
    if bucket:
        client: Any = backend.connection.meta.client  # type: ignore[attr-defined]
        client.head_bucket(Bucket=bucket)
        return
    if isinstance(backend, FileSystemStorage):
        folder = Path(backend.location)
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise OSError(f"storage {alias!r}: {probe} is not a writable folder")
        return
    backend.exists("healthz")


PROBES = {"database": database, "broker": broker, "storage": storage}
