"""The portal as a user meets it, for the page, load and memory benchmarks: a database
seeded with ``seed_demo`` (cached between runs), gunicorn on loopback, and plain HTTP.

Databases: the embedded configuration uses SQLite under ``var/bench/<name>``; the server
configuration uses PostgreSQL at ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/bench_portal``; the quick run adds ``_quick`` to the
name) and Redis at ``BENCH_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``). A database
is created when missing and seeded up to the wanted number of tickets: ``seed_demo`` counts
the seeded tickets it finds, so a second run reuses the first one's rows.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.common import ROOT, Context

PYTHON = sys.executable
BIN = Path(sys.executable).parent


@dataclass
class Setup:
    """One configuration to measure: its environment and the tickets its database holds."""

    name: str
    tickets: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def postgres(self) -> bool:
        return self.env.get("DATABASE_URL", "").startswith("postgres")


def _with_db_name(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path + suffix))


def postgres_setup(ctx: Context, tickets: int) -> Setup | None:
    """PostgreSQL + Redis, or None when either is not reachable (the figure is then skipped)."""
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_portal")
    url = _with_db_name(base, "_quick") if ctx.quick else base
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    try:
        _ensure_database(url)
        host = urlsplit(broker)
        socket.create_connection((host.hostname or "127.0.0.1", host.port or 6379), 2).close()
    except Exception as exc:
        print(f"  (PostgreSQL/Redis not reachable: {exc}; skipping that configuration)")
        return None
    work = ctx.work / ("pg-quick" if ctx.quick else "pg")
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "SECRET_KEY": "benchmark-only-secret-key-not-for-production",
        "DATA_DIR": str(work),
        # Plain HTTP on loopback: no redirect to https, cookies without the secure flag.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
    }
    return Setup("PostgreSQL + Redis", tickets, env)


def sqlite_setup(ctx: Context, tickets: int) -> Setup:
    work = ctx.work / f"sqlite-{tickets}"
    work.mkdir(parents=True, exist_ok=True)
    return Setup("SQLite embedded", tickets, {"DATA_DIR": str(work), "DATABASE_URL": ""})


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')


def environ(setup: Setup, **extra: str) -> dict[str, str]:
    env = {**os.environ, **setup.env, **extra}
    if not env.get("DATABASE_URL"):
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
    env.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    return env


def manage(setup: Setup, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=environ(setup),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def prepare(setup: Setup) -> float:
    """Migrate and seed (cached); returns the seconds it took (0-ish when cached)."""
    started = time.perf_counter()
    manage(setup, "migrate", "--noinput")
    manage(setup, "seed_demo", "--force", "--tickets", str(setup.tickets))
    return time.perf_counter() - started


def helper(setup: Setup, command: str, payload: dict[str, Any]) -> Any:
    """Run benchmarks.inprocess (Django set up against the setup's database) and return
    its JSON answer."""
    result = subprocess.run(
        [PYTHON, "-m", "benchmarks.inprocess", command, json.dumps(payload)],
        cwd=ROOT,
        env=environ(setup),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmarks.inprocess {command} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the gunicorn master)."""
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]


@contextmanager
def gunicorn(setup: Setup, *, workers: int = 2, threads: int = 1, **env: str) -> Iterator[Server]:
    """gunicorn serving the portal on a free loopback port until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "changecontrol.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environ(setup, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = request(port, "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /healthz")
            time.sleep(0.2)
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, float | None, bytes]:
    """GET ``path``: (status, the server's own time in seconds from Server-Timing, body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, server_time(response.getheader("Server-Timing")), body
    finally:
        if own:
            conn.close()


def server_time(header: str | None) -> float | None:
    """Seconds from ``Server-Timing: app;dur=<ms>``."""
    for part in (header or "").split(";"):
        if part.strip().startswith("dur="):
            return float(part.strip()[4:]) / 1000
    return None


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0
