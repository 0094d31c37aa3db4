"""The apply lock of one stack in one environment (an environment lock per stack): held by
the worker for an apply's whole duration, released by the
operating system or PostgreSQL when the holder is really gone.

On PostgreSQL it is a session-level advisory lock on a dedicated connection (PostgreSQL
frees it when the process dies and its socket closes) plus the file below; on SQLite an
``flock`` on a file under ``DATA_DIR/locks/`` (the kernel frees it when the last process
holding the file is gone). A stalled holder (SIGSTOP, a long GC, Terraform waiting on a
state lock) keeps it, so nobody declares it dead and starts a second apply in the same
workspace. The apply's Terraform processes inherit the locked file (``inheritable_fds``):
a worker killed mid-apply leaves its Terraform to finish on SIGINT, and the lock stays
taken until that Terraform has exited too.

A session lock needs a real session: point DATABASE_URL at PostgreSQL itself or at a
pooler in session mode, never at a transaction-mode pooler (PgBouncer ``pool_mode =
transaction``), which would hand the session, and the lock, to someone else. On SQLite
the web, beat and workers must share one DATA_DIR (they do in the one-machine run).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.utils import load_backend

log = logging.getLogger(__name__)

# The first key of every advisory lock the portal takes ("CCPE": change control portal env).
_PG_NAMESPACE = 0x43435045
# A stack's lock in an environment: first key "CS" and the stack id's low 16 bits, second key
# the environment id. Two stacks whose ids share those bits share a lock: they apply one
# after the other, never both at once, so a collision only serialises (docs/stacks.md).
_PG_STACK_PREFIX = 0x43530000


class EnvironmentLock:
    """One stack's apply lock in one environment, taken without blocking and checked while
    held (``stack_id`` None: the environment's own lock, as before stacks)."""

    def __init__(self, environment_id: int, stack_id: int | None = None) -> None:
        self.environment_id = environment_id
        self.stack_id = stack_id
        self._key1 = _PG_NAMESPACE if stack_id is None else _PG_STACK_PREFIX | (stack_id & 0xFFFF)
        self._conn: Any = None  # the dedicated DB-API connection (PostgreSQL)
        self._fd: int | None = None  # the locked file (SQLite)
        self._guard = threading.Lock()  # the heartbeat thread checks while the worker runs

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    @property
    def inheritable_fds(self) -> tuple[int, ...]:
        """The locked file, for the processes that must keep the lock while they live."""
        return (self._fd,) if self._fd is not None else ()

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        with self._guard:
            if self.held:
                return True
            if _is_postgres():
                return self._try_pg()
            return self._try_file()

    def acquire(self, *, timeout: float, poll: float = 0.5) -> bool:
        """Wait up to ``timeout`` seconds for the lock (the reconciler may hold it briefly)."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def alive(self) -> bool:
        """Is the lock still ours? False once its connection is gone (then so is the lock)."""
        with self._guard:
            if self._conn is None:
                return self._fd is not None
            try:
                with self._conn.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid "
                        "AND objsubid = 2 AND granted",
                        [self._key1, self.environment_id],
                    )
                    (count,) = cursor.fetchone()
                return bool(count)
            except Exception:
                log.exception("the lock connection of environment %s failed", self.environment_id)
                return False

    def release(self) -> None:
        with self._guard:
            if self._conn is not None:
                # Closing the session frees the advisory lock, even if the unlock fails.
                with contextlib.suppress(Exception), self._conn.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s::int4, %s::int4)",
                        [self._key1, self.environment_id],
                    )
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> EnvironmentLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _try_pg(self) -> bool:
        conn = _new_pg_connection()
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                    [self._key1, self.environment_id],
                )
                (got,) = cursor.fetchone()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        if self._try_file():
            return True
        # The advisory lock was free but the file is not: a dead worker's Terraform is
        # still finishing its apply. Not ours yet.
        self._conn = None
        with contextlib.suppress(Exception):
            conn.close()
        return False

    def _try_file(self) -> bool:
        folder = settings.DATA_DIR / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"environment-{self.environment_id}"
        if self.stack_id is not None:
            name += f"-stack-{self.stack_id}"
        path = folder / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True


def _is_postgres() -> bool:
    return connections["default"].vendor == "postgresql"


def _new_pg_connection() -> Any:
    """A connection of its own, outside Django's per-thread handling and transactions."""
    params = dict(connections["default"].settings_dict)
    wrapper = load_backend(params["ENGINE"]).DatabaseWrapper(params, alias="environment-lock")
    conn = wrapper.get_new_connection(wrapper.get_connection_params())
    conn.autocommit = True
    return conn
