"""A running Terraform's output, streamed into the database line by line (log chunks the
live page reads), and the heartbeat that proves the worker alive and, for an apply,
still holding the environment lock."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from deployments.choices import RunStatus
from deployments.lib.locks import EnvironmentLock
from deployments.models import RunLogChunk, TerraformRun

log = logging.getLogger(__name__)


def storable(text: str) -> str:
    """Terraform's output as the database can store it: PostgreSQL refuses NUL in text, and
    a line holding one (a provisioner printing binary) would fail every write it is in."""
    return text.replace("\x00", "\ufffd")


def reset_connection() -> None:
    """Drop this thread's connection after a database error, so the next query opens a
    fresh one (inside a transaction the caller's rollback does that instead)."""
    if not connection.in_atomic_block:
        connection.close()


class LogWriter:
    """Buffers a run's output and writes it as chunks, so pages can stream it live.

    Called from the thread reading Terraform's output and from the heartbeat thread;
    each write also proves the worker alive (``heartbeat_at``). A chunk is written only
    while the run is still running under this worker's fencing token; text that could
    not be written (a database error, or the run was interrupted meanwhile) stays in the
    buffer and is recorded with the outcome.

    Bounded (RUN_LOG_MAX_BYTES): the first half is kept as it comes (the head); after
    that, chunks keep coming (the live log goes on) but the oldest ones past the second
    half are deleted as new ones arrive (the tail), and one chunk between head and tail,
    in a sequence number kept for it, says how many lines and bytes were dropped. The
    worker holds at most about one tail's worth of text, whatever Terraform prints.
    """

    FLUSH_SECONDS = 0.5
    FLUSH_BYTES = 64 * 1024
    HEARTBEAT_SECONDS = 5.0

    def __init__(self, run: TerraformRun, *, fence: int = 0) -> None:
        self.run = run
        self.fence = fence
        self.seq = 0
        self.offset = 0
        self.buffer: collections.deque[str] = collections.deque()
        self.size = 0
        self.last_flush = time.monotonic()
        self.last_beat = 0.0
        self.fenced_out = False  # the run is no longer ours to write
        self.lock = threading.Lock()
        limit = settings.RUN_LOG_MAX_BYTES
        self.head_left = limit // 2
        self.tail_budget = limit - self.head_left
        self.in_tail = False
        self.marker_seq = 0  # the chunk saying what was dropped, once something was
        self.marker_written = False
        self.tail_chunks: collections.deque[tuple[int, int, int]] = collections.deque()
        self.tail_size = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    def __call__(self, line: str) -> None:
        line = storable(line) + "\n"
        size = len(line.encode(errors="replace"))
        with self.lock:
            if not self.in_tail:
                if size <= self.head_left:
                    self.head_left -= size
                else:
                    # The head is full: what is buffered is its end; a sequence number is
                    # kept for the line that will say what was dropped after it.
                    self._flush()
                    self.in_tail = True
                    self.seq += 1
                    self.marker_seq = self.seq
            self.buffer.append(line)
            self.size += size
            if self.in_tail:
                # Unwritten text (the database is away) is bounded like the tail.
                while self.size > self.tail_budget and len(self.buffer) > 1:
                    dropped = self.buffer.popleft()
                    dropped_size = len(dropped.encode(errors="replace"))
                    self.size -= dropped_size
                    self.dropped_lines += 1
                    self.dropped_bytes += dropped_size
            if (
                time.monotonic() - self.last_flush >= self.FLUSH_SECONDS
                or self.size >= self.FLUSH_BYTES
            ):
                self._flush()

    def flush(self) -> bool:
        """Write what is buffered; False when some text is still unwritten."""
        with self.lock:
            self._flush()
            return not self.buffer

    def unwritten(self) -> str:
        """The text no chunk holds (handed to run_finish, so the log stays complete)."""
        with self.lock:
            text = "".join(self.buffer)
            self.buffer, self.size = collections.deque(), 0
            return text

    def dropped_note(self) -> str:
        return (
            f"[… {self.dropped_lines} lines ({self.dropped_bytes} bytes) of output dropped "
            f"here: a run's log keeps its first and last {settings.RUN_LOG_MAX_BYTES // 2} "
            "bytes (RUN_LOG_MAX_BYTES) …]\n"
        )

    def seal(self) -> None:
        """Before the outcome is recorded: the dropped-output line holds the final count."""
        with self.lock:
            if not self.dropped_lines:
                return
            try:
                with transaction.atomic():
                    if not self.marker_written:
                        RunLogChunk.objects.create(
                            run_id=self.run.pk,
                            seq=self.marker_seq,
                            start=self.offset,
                            text=self.dropped_note(),
                        )
                        self.marker_written = True
                    else:
                        RunLogChunk.objects.filter(run_id=self.run.pk, seq=self.marker_seq).update(
                            text=self.dropped_note()
                        )
            except DatabaseError:
                log.exception("could not record the dropped output of run %s", self.run.pk)
                reset_connection()

    def _flush(self) -> None:
        now = time.monotonic()
        self.last_flush = now
        beat = now - self.last_beat >= self.HEARTBEAT_SECONDS
        if self.fenced_out or not (self.buffer or beat):
            return
        text = "".join(self.buffer)
        size = self.size
        try:
            with transaction.atomic():
                # The guarded update locks the run row: an interrupt either came first (no
                # row matches; the text is kept for the late finish) or waits for this chunk.
                owned = TerraformRun.objects.filter(
                    pk=self.run.pk, status=RunStatus.RUNNING, fence=self.fence
                ).update(heartbeat_at=timezone.now())
                if not owned:
                    self.fenced_out = True
                    return
                if text:
                    RunLogChunk.objects.create(
                        run_id=self.run.pk, seq=self.seq + 1, start=self.offset, text=text
                    )
                    if self.in_tail:
                        self._trim_tail(self.seq + 1, size, text.count("\n"))
        except DatabaseError:
            # Keep the text: the next flush writes it (a log never loses lines).
            log.exception("could not write the log of run %s; will retry", self.run.pk)
            reset_connection()
            return
        self.last_beat = now
        if text:
            self.seq += 1
            self.offset += len(text)
            self.buffer, self.size = collections.deque(), 0

    def _trim_tail(self, seq: int, size: int, lines: int) -> None:
        """Inside _flush's transaction: the tail's oldest chunks go once it is too long."""
        self.tail_chunks.append((seq, size, lines))
        self.tail_size += size
        gone: list[int] = []
        dropped_lines = dropped_bytes = 0
        while self.tail_size > self.tail_budget and len(self.tail_chunks) > 1:
            old_seq, old_size, old_lines = self.tail_chunks.popleft()
            self.tail_size -= old_size
            gone.append(old_seq)
            dropped_lines += old_lines
            dropped_bytes += old_size
        if not gone:
            return
        RunLogChunk.objects.filter(run_id=self.run.pk, seq__in=gone).delete()
        self.dropped_lines += dropped_lines
        self.dropped_bytes += dropped_bytes
        if not self.marker_written:
            RunLogChunk.objects.create(
                run_id=self.run.pk, seq=self.marker_seq, start=self.offset, text=self.dropped_note()
            )
            self.marker_written = True


def interrupt_terraform() -> None:
    """SIGINT each process this worker started (Terraform runs in a session of its own):
    its graceful stop, which writes state and releases the state lock.

    The process itself, not its group: under the sandbox that process is the outer
    bubblewrap, whose end is Terraform's one SIGINT (a second would make Terraform quit
    at once, "Two interrupts received"). The children are found through /proc.
    """
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and int(fields[2]) == int(entry):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGINT)


class Heartbeat:
    """Flushes quiet output every quarter second and keeps ``heartbeat_at`` fresh while
    Terraform runs (a flush with nothing to write and no beat due costs no query).

    It survives database errors (logged, connection dropped, tried again next time), and
    for an apply it checks each second that the environment lock is still held: once it
    is lost, another worker may take the environment, so Terraform is stopped and the run
    ends interrupted.
    """

    # A line Terraform prints then falls silent after is readable within about this long.
    INTERVAL = 0.25
    LOCK_CHECK_SECONDS = 1.0

    def __init__(self, writer: LogWriter, *, env_lock: EnvironmentLock | None = None) -> None:
        self.writer = writer
        self.env_lock = env_lock
        self.lock_lost = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        checked = 0.0
        try:
            while not self.stopped.wait(self.INTERVAL):
                try:
                    self.writer.flush()
                except Exception:
                    log.exception("heartbeat of run %s failed; retrying", self.writer.run.pk)
                    reset_connection()
                lock = self.env_lock
                if lock is None or self.lock_lost.is_set():
                    continue
                if time.monotonic() - checked < self.LOCK_CHECK_SECONDS:
                    continue
                checked = time.monotonic()
                if not lock.alive():
                    self.lock_lost.set()
                    self.writer(
                        "error: this worker lost the environment lock (its database "
                        "session ended); stopping Terraform"
                    )
                    interrupt_terraform()
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


# PostgreSQL joins the run's chunks in ``seq`` order itself and appends them and a tail.
_FOLD_SQL_POSTGRESQL = (
    "UPDATE deployments_terraformrun SET log = log || COALESCE("
    "(SELECT string_agg(text, '' ORDER BY seq) FROM deployments_runlogchunk "
    "WHERE run_id = %s), '') || %s WHERE id = %s"
)


def fold_log(run: TerraformRun, *, tail: str = "") -> None:
    """Append the run's log chunks, in order, then ``tail`` to its stored log, and drop the
    chunks. Call it after ``run.save()`` in the same transaction.

    On PostgreSQL the database joins the text: a 100,000-line log never becomes one string
    in the worker's memory (it was there twice: the chunks and their join). SQLite runs
    inside the worker's process, where its own join costs more memory than Python's
    (measured: ~8 times the log's size against ~3), so there Python joins. ``run.log``
    is read again from the database when next used.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_FOLD_SQL_POSTGRESQL, [run.pk, tail, run.pk])
    else:
        chunks = RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
        text = "".join(itertools.chain(chunks.iterator(chunk_size=16), [tail]))
        TerraformRun.objects.filter(pk=run.pk).update(log=Concat(F("log"), Value(text)))
        del text
    RunLogChunk.objects.filter(run=run).delete()
    run.__dict__.pop("log", None)  # deferred: loaded from the row when read
