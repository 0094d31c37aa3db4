"""Real Celery worker processes for the worker tests: start, stop, and an empty broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import ROOT, database_url

# `celery` on the tests' clock (tests/helpers/shifted_clock.py: shifted with
# --clock-shift-days, as the test process is).
CELERY = [sys.executable, "-m", "tests.helpers.shifted_clock", "celery"]


def purge_broker() -> None:
    """Drop every message of the portal's queues, the per-environment Terraform queues
    included (a message left by an earlier test names a row of that test's database)."""
    from changecontrol.celery import app
    from deployments.lib.queues import worker_queues
    from deployments.models import Environment

    names = set(Environment.objects.values_list("name", flat=True)) | {"dev", "staging", "prod"}
    with app.connection_for_write() as connection_:
        channel = connection_.default_channel
        for queue in worker_queues(sorted(names), portal=True):
            try:
                channel.queue_purge(queue)
            except Exception:
                continue


def spawn_worker(
    tmp_path: Path,
    infra_repo: Path,
    *,
    name: str = "test-worker",
    queues: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A real `celery worker` process on the configured broker, sharing the test database;
    consuming ``queues`` (-Q) or, without, every queue (as `make run`'s worker does)."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "INFRA_REPO": str(infra_repo),
        "TERRAFORM_BACKEND_CONFIG": f"workspace_dir={tmp_path / 'state'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SECRET_KEY": "worker-test-key",
        **(env or {}),
    }
    argv = [
        *CELERY,
        "-A",
        "changecontrol",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
    ]
    if queues:
        argv += ["-Q", ",".join(queues)]
    with (tmp_path / f"{name}.log").open("ab") as log_file:
        return subprocess.Popen(
            argv, cwd=ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
