"""One lock order everywhere (ticket → run → audit head), and the PostgreSQL side of the
environment lock: proven with forced interleavings on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection

from deployments import services
from deployments import terraform as tf
from deployments.choices import RunStatus, TicketStatus
from deployments.lib.locks import EnvironmentLock
from deployments.models import AuditEvent, Environment, TerraformRun
from deployments.services.runs import logstream, outcome
from deployments.terraform import sandbox
from tests.helpers.factories import RunFactory, TicketFactory

ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (row locks, advisory locks)"),
    pytest.mark.django_db(transaction=True),
]


def _in_thread(name: str, call: Callable[[], Any], errors: dict[str, BaseException]) -> Any:
    def target() -> None:
        try:
            call()
        except BaseException as exc:
            errors[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def test_a_cancel_landing_while_a_plan_finishes_neither_deadlocks_nor_loses_the_outcome(
    author: User, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"),
        author=author,
        status=TicketStatus.PLANNING,
    )
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING, plan_sha256="")

    finish_has_written = threading.Event()  # the finisher holds its locks up to the audit head
    cancel_has_ticket = threading.Event()  # the cancel holds the ticket's row lock
    real_audit = outcome.audit_record
    real_locked_ticket = services.tickets.locked_ticket

    def audit_then_pause(**kwargs: Any) -> Any:
        event = real_audit(**kwargs)
        if kwargs["action"] == "run.finish":
            finish_has_written.set()
            # Let the cancel take the ticket now if it can (it can only if the finisher
            # has not locked the ticket first): the interleaving that deadlocked.
            cancel_has_ticket.wait(timeout=3)
        return event

    def locked_then_signal(ticket_id: int) -> Any:
        locked = real_locked_ticket(ticket_id)
        cancel_has_ticket.set()
        return locked

    monkeypatch.setattr(outcome, "audit_record", audit_then_pause)
    monkeypatch.setattr(services.tickets, "locked_ticket", locked_then_signal)

    def finish() -> None:
        services.run_finish(
            run_id=run.pk,
            exit_code=0,
            error="",
            stale=False,
            terraform_version="1.11.4",
            plan=tf.PlanResult(
                exit_code=0,
                plan_bytes=b"plan",
                plan_sha256="e" * 64,
                summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
                has_changes=True,
            ),
        )

    def cancel() -> None:
        assert finish_has_written.wait(timeout=30)
        services.ticket_cancel(ticket_id=ticket.pk, actor=author, reason="not needed")

    errors: dict[str, BaseException] = {}
    threads = [_in_thread("finish", finish, errors), _in_thread("cancel", cancel, errors)]
    for thread in threads:
        thread.join(timeout=60)
    assert errors == {}, errors  # on the old order PostgreSQL aborted one: deadlock detected
    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.plan_sha256 == "e" * 64
    assert ticket.status == TicketStatus.CANCELLED
    assert AuditEvent.objects.filter(action="run.finish", data__run=run.pk).count() == 1
    assert services.audit_verify()[0]


def test_a_lock_whose_session_dies_is_known_to_its_holder_and_free_once_it_lets_go() -> None:
    env = Environment.objects.get(name="prod")
    holder = EnvironmentLock(env.pk)
    try:
        assert holder.try_acquire() and holder.alive()
        assert not EnvironmentLock(env.pk).try_acquire()
        with holder._conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert not holder.alive()
        # Its worker stops Terraform and lets go; until then the lock's file is still held
        # (by the worker and the Terraform processes that inherited it).
        with EnvironmentLock(env.pk) as other:
            assert not other.try_acquire()
            holder.release()
            assert other.try_acquire()
    finally:
        holder.release()


def test_a_worker_that_loses_its_lock_stops_terraform(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat notices the lock's session is gone and SIGINTs Terraform's group."""
    monkeypatch.setattr(logstream.Heartbeat, "INTERVAL", 0.05)
    env = Environment.objects.get(name="prod")
    ticket = TicketFactory(environment=env, status=TicketStatus.APPLYING)
    run = TerraformRun.objects.create(
        ticket=ticket,
        environment=env,
        kind="apply",
        plan=RunFactory(ticket=ticket),
        status=RunStatus.RUNNING,
        commit_sha=ticket.commit_sha,
        workspace="prod",
        var_file="x",
        fence=1,
    )
    # Stands in for Terraform: a child in its own session, started as the runner starts it
    # (sandbox._child_setup: SIGINT back to its default, for an ignored signal is inherited
    # across exec and a shell cannot trap it). It says when its handler is in place: a
    # signal that came earlier (between fork and exec) would be lost.
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as Celery's pool processes do
    try:
        child = subprocess.Popen(
            ["sh", "-c", "trap 'exit 130' INT; echo ready; sleep 60 & wait $!"],
            start_new_session=True,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: sandbox._child_setup(None),
        )
    finally:
        signal.signal(signal.SIGINT, ignoring)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    lock = EnvironmentLock(env.pk)
    assert lock.try_acquire()
    heartbeat = logstream.Heartbeat(logstream.LogWriter(run, fence=1), env_lock=lock)
    try:
        with heartbeat:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND objid = %s",
                    [env.pk],
                )
            assert heartbeat.lock_lost.wait(timeout=30)
            assert child.wait(timeout=30) == 130  # stopped with SIGINT, its graceful stop
    finally:
        lock.release()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.stdout.close()
