"""Fault tests with real workers on PostgreSQL and Redis (issue 6): a stalled worker keeps
its environment, a dead one frees it within a minute, and a Redis restart loses nothing.

Run with DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...; skipped on SQLite.
The beat schedule is played by a real `celery beat` and a worker on the portal queue where
the test needs the reconciler to run on its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.paths import ROOT, database_url
from tests.helpers.waiting import paced_terraform, wait_for
from tests.helpers.workers import CELERY

ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.terraform,
    pytest.mark.skipif(not ON_POSTGRES, reason="fault tests run on PostgreSQL + Redis"),
    pytest.mark.django_db(transaction=True),
]


def _celery_pids(pid: int) -> list[int]:
    """The Celery main process and its pool processes (not Terraform: its own session)."""
    pids = [pid]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    for child in children.split():
        try:
            if b"celery" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids += _celery_pids(int(child))
        except OSError:
            continue
    return pids


def _terraform_groups(pids: list[int]) -> list[int]:
    """Process groups the worker's processes started (Terraform runs in its own session)."""
    groups = []
    for pid in pids:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        for child in out.split():
            if int(child) not in pids:
                with contextlib.suppress(ProcessLookupError):  # it has just finished
                    groups.append(os.getpgid(int(child)))
    return groups


def _file_dev(author: User, title: str) -> int:
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": title, "environment": "dev"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def _running_apply(ticket_id: int) -> TerraformRun | None:
    return TerraformRun.objects.filter(
        ticket_id=ticket_id, kind=RunKind.APPLY, status=RunStatus.RUNNING
    ).first()


def _approved_dev_ticket(author: User) -> Ticket:
    """A second approved dev ticket with a plan, waiting for the environment."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name="dev"),
        author=author,
        status=TicketStatus.APPROVED,
    )
    plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"second").hexdigest())
    ticket.current_plan = plan
    ticket.save()
    return ticket


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [*CELERY, "-A", "changecontrol", *args],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def low_heartbeat_timeout(monkeypatch: pytest.MonkeyPatch, settings: Any) -> int:
    monkeypatch.setenv("RUN_HEARTBEAT_TIMEOUT", "10")
    settings.RUN_HEARTBEAT_TIMEOUT = 10
    return 10


def test_a_stopped_worker_keeps_its_environment_and_then_finishes(
    request: pytest.FixtureRequest,
    author: User,
    low_heartbeat_timeout: int,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """SIGSTOP mid-apply past RUN_HEARTBEAT_TIMEOUT: not interrupted, no second apply."""
    paced_terraform(tmp_path, monkeypatch, commands=("apply",), seconds=25)
    worker = request.getfixturevalue("celery_worker_process")
    ticket_id = _file_dev(author, "stalled")
    run = wait_for(lambda: _running_apply(ticket_id), timeout=180, what="the apply to start")
    wait_for(lambda: run.chunks.exists(), timeout=30, what="the apply's first output")

    pids = _celery_pids(worker.pid)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        stalled_since = timezone.now()

        def silent_too_long() -> bool:
            run.refresh_from_db()
            assert run.heartbeat_at is not None
            age = (timezone.now() - run.heartbeat_at).total_seconds()
            return age > low_heartbeat_timeout + 2

        wait_for(silent_too_long, timeout=60, what="the heartbeat to go stale")
        for _ in range(3):
            assert services.runs_reconcile()["interrupted"] == 0
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING
        print(
            f"\nworker stopped {(timezone.now() - stalled_since).total_seconds():.0f} s, "
            f"heartbeat {(timezone.now() - run.heartbeat_at).total_seconds():.0f} s old "
            f"(timeout {low_heartbeat_timeout} s): run still running, not interrupted"
        )
        # No second apply may start in the environment meanwhile.
        second = _approved_dev_ticket(author)
        refused = api_for(author).post(f"/api/v1/tickets/{second.pk}/deploy/")
        assert refused.status_code == 409 and "busy" in refused.json()["detail"]
        services.runs_reconcile()  # tries to release the environment to the waiting ticket
        assert not TerraformRun.objects.filter(ticket=second, kind=RunKind.APPLY).exists()
        assert (
            TerraformRun.objects.filter(
                environment__name="dev", kind=RunKind.APPLY, status=RunStatus.RUNNING
            ).count()
            == 1
        )
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)

    def apply_finished() -> str | None:
        run.refresh_from_db()
        return run.status if run.status != RunStatus.RUNNING else None

    assert wait_for(apply_finished, timeout=180, what="the apply to finish") == "succeeded"
    assert run.exit_code == 0 and "Apply complete!" in run.log
    assert worker.poll() is None


class _Reconciler:
    """`celery beat` and the portal-queue worker it feeds."""

    def __init__(self, beat: subprocess.Popen[bytes], portal: subprocess.Popen[bytes]) -> None:
        self.beat, self.portal = beat, portal

    def stop(self) -> None:
        """Stop both: after this, nothing but the test itself moves a ticket (the beat's
        release would start any approved dev ticket it finds)."""
        _stop(self.beat)
        _stop(self.portal)


@pytest.fixture
def reconciler(transactional_db: None, tmp_path: Path, settings: Any) -> Iterator[_Reconciler]:
    """`celery beat` plus a worker on the portal queue: the reconciler as deployed."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "worker-test-key",
        "INFRA_REPO": settings.INFRA_REPO,
    }
    log_path = tmp_path / "reconciler.log"
    beat = _spawn(
        ["beat", "--loglevel", "INFO", "-s", str(tmp_path / "beat-schedule")], env, log_path
    )
    portal = _spawn(
        [
            "worker",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"reconciler-{os.getpid()}@%h",
            "--loglevel",
            "INFO",
        ],
        env,
        log_path,
    )
    running = _Reconciler(beat, portal)
    try:
        yield running
    finally:
        running.stop()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(log_path.read_text())


def _in_terraform_apply(
    request: pytest.FixtureRequest,
    author: User,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    seconds: int,
) -> tuple[int, TerraformRun, subprocess.Popen[bytes]]:
    """A dev ticket whose apply is in `terraform apply` itself (paced: it waits ``seconds``
    first) on a real worker, with the reconciler running: (ticket id, run, worker)."""
    paced_terraform(tmp_path, monkeypatch, commands=("apply",), seconds=seconds)
    worker = request.getfixturevalue("celery_worker_process")
    ticket_id = _file_dev(author, "doomed")
    run = wait_for(lambda: _running_apply(ticket_id), timeout=180, what="the apply to start")
    wait_for(
        lambda: run.chunks.filter(text__contains="$ terraform apply").exists(),
        timeout=60,
        what="the apply command to start",
    )
    request.getfixturevalue("reconciler")
    return ticket_id, run, worker


def test_a_killed_worker_leaves_the_apply_interrupted_and_the_environment_free_within_60_s(
    request: pytest.FixtureRequest,
    author: User,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings: Any,
) -> None:
    ticket_id, run, worker = _in_terraform_apply(request, author, monkeypatch, tmp_path, 120)
    pids = _celery_pids(worker.pid)
    groups = _terraform_groups(pids)
    killed_at = time.monotonic()
    for pid in reversed(pids):
        os.kill(pid, signal.SIGKILL)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    worker.wait(timeout=10)

    def interrupted() -> bool:
        run.refresh_from_db()
        return run.status == RunStatus.INTERRUPTED

    wait_for(interrupted, timeout=90, what="the apply to be marked interrupted")
    elapsed = time.monotonic() - killed_at
    print(
        f"\nkill -9 → run interrupted in {elapsed:.1f} s "
        f"(beat every {settings.RUN_RECONCILE_SECONDS} s)"
    )
    assert elapsed < 60
    ticket = Ticket.objects.get(pk=ticket_id)
    assert ticket.status == TicketStatus.APPLY_FAILED and "force-unlock" in ticket.status_reason
    assert run.exit_code is None and "environment lock" in run.error
    # The environment is free: another ticket's apply is accepted at once. The beat stops
    # first: its next pass would release dev to the approved ticket itself (an auto-deploy
    # environment starts what waits), and on a loaded machine that pass can come between
    # filing it and deploying it, answering the test's deploy with "busy".
    request.getfixturevalue("reconciler").stop()
    second = _approved_dev_ticket(author)
    assert api_for(author).post(f"/api/v1/tickets/{second.pk}/deploy/").status_code == 202
    assert TerraformRun.objects.filter(ticket_id=ticket_id, kind=RunKind.APPLY).count() == 1


def test_a_killed_workers_terraform_keeps_the_environment_until_it_exits(
    request: pytest.FixtureRequest,
    author: User,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings: Any,
) -> None:
    """Terraform outliving its worker (here a wrapper still waiting before the real apply,
    deaf to the SIGINT its parent's death sends) holds the environment lock's file: the
    reconciler does not call the run interrupted and no second apply can take the
    environment until that Terraform has exited."""
    from deployments.lib.locks import EnvironmentLock

    _ticket_id, run, worker = _in_terraform_apply(request, author, monkeypatch, tmp_path, 60)
    pids = _celery_pids(worker.pid)
    groups = _terraform_groups(pids)
    assert groups, "the apply's Terraform was not found"
    for pid in reversed(pids):
        os.kill(pid, signal.SIGKILL)  # the worker only: its Terraform goes on
    worker.wait(timeout=10)

    # Two reconciler passes while the orphaned Terraform lives.
    until = time.monotonic() + 2 * settings.RUN_RECONCILE_SECONDS + 5
    while time.monotonic() < until:
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING
        with EnvironmentLock(run.environment_id) as probe:
            assert not probe.try_acquire()
        time.sleep(1)

    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def interrupted() -> bool:
        run.refresh_from_db()
        return run.status == RunStatus.INTERRUPTED

    wait_for(interrupted, timeout=90, what="the apply to be marked interrupted")
    assert "environment lock" in run.error


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Iterator[dict[str, Any]]:
    """A Redis of this test's own (never the shared one), the worker and this process's
    Celery app pointed at it; ``restart()`` stops and starts it, losing what it held."""
    from changecontrol.celery import app

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL)
        wait_for(lambda: _answers(port), timeout=20, what="redis-server to listen")
        return proc

    state = {"proc": start(), "url": url}

    def restart() -> None:
        state["proc"].terminate()
        state["proc"].wait(timeout=20)
        state["proc"] = start()

    state["restart"] = restart
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    previous = app.conf.broker_url
    _point_app_at(app, url)
    settings.CELERY_BROKER_URL = url
    try:
        yield state
    finally:
        _point_app_at(app, previous, close_current=True)
        state["proc"].terminate()
        state["proc"].wait(timeout=20)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _point_app_at(app: Any, url: str, *, close_current: bool = False) -> None:
    """Kombu keeps one pool per broker URL for the whole process: the shared broker's pool
    is left open for the tests that follow; only this test's own Redis pool is closed."""
    if close_current and app._pool is not None:
        app._pool.force_close_all()
    app.conf.broker_url = url
    app._after_fork()  # forgets the app's connection and producer pools, as after a fork


def test_a_redis_restart_with_tickets_queued_loses_nothing(
    own_redis: dict[str, Any],
    request: pytest.FixtureRequest,
    author: User,
    settings: Any,
) -> None:
    worker = request.getfixturevalue("celery_worker_process")
    pids = _celery_pids(worker.pid)
    for pid in pids:  # the worker is busy: what is sent waits in Redis
        os.kill(pid, signal.SIGSTOP)
    try:
        queued = [_file_dev(author, f"queued {n}") for n in range(3)]
        own_redis["restart"]()  # Redis comes back empty (no persistence)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    plans = TerraformRun.objects.filter(ticket_id__in=queued, kind=RunKind.PLAN)
    assert set(plans.values_list("status", flat=True)) == {RunStatus.QUEUED}

    # The reconciler sends runs still queued after RUN_RESEND_AFTER seconds again.
    settings.RUN_RESEND_AFTER = 5

    last_beat = [0.0]

    def all_completed() -> bool:
        if time.monotonic() - last_beat[0] >= 5:  # the beat, every 5 s
            last_beat[0] = time.monotonic()
            services.runs_reconcile()
        statuses = set(Ticket.objects.filter(pk__in=queued).values_list("status", flat=True))
        assert not statuses & {"plan_failed", "apply_failed"}, statuses
        return statuses == {TicketStatus.COMPLETED}

    wait_for(all_completed, timeout=300, what="the queued tickets to complete")
    runs = TerraformRun.objects.filter(ticket_id__in=queued)
    assert not runs.exclude(status=RunStatus.SUCCEEDED).exists()
    # Redis lost the messages it held (one may already sit in the stopped worker's socket):
    # the reconciler sent those runs again.
    resent = [r.pk for r in runs.filter(kind=RunKind.PLAN) if r.dispatch_count >= 2]
    print(
        f"\n{len(queued)} tickets queued across a Redis restart; the reconciler sent "
        f"{len(resent)} plan runs again; all {len(queued)} completed"
    )
    assert resent


CONCURRENT_DEPLOYS = 30


def test_concurrent_deploy_requests_run_exactly_one_apply_on_a_real_worker(
    request: pytest.FixtureRequest, author: User, lead: User
) -> None:
    """Double clicks, CI retries and racing API calls, with the broker and a worker live:
    one apply is queued, sent and run; every other request is refused (409)."""
    request.getfixturevalue("celery_worker_process")
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "racing deploys", "environment": "staging"}, format="json"
    )
    assert response.status_code == 201, response.json()
    ticket_id = int(response.json()["id"])

    def awaiting_approval() -> Ticket | None:
        ticket = Ticket.objects.select_related("current_plan").get(pk=ticket_id)
        assert ticket.status != TicketStatus.PLAN_FAILED, ticket.status_reason
        return ticket if ticket.status == TicketStatus.AWAITING_APPROVAL else None

    ticket = wait_for(awaiting_approval, timeout=180, what="the plan to finish")
    assert ticket.current_plan is not None
    approved = api_for(lead).post(
        f"/api/v1/tickets/{ticket_id}/approve/",
        {"comment": "reviewed", "plan_sha256": ticket.current_plan.plan_sha256},
        format="json",
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == TicketStatus.APPROVED

    barrier = threading.Barrier(CONCURRENT_DEPLOYS)
    statuses: list[int] = [0] * CONCURRENT_DEPLOYS

    def deploy(index: int) -> None:
        try:
            barrier.wait()
            statuses[index] = (
                api_for(author).post(f"/api/v1/tickets/{ticket_id}/deploy/").status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(CONCURRENT_DEPLOYS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(set(statuses)) == [202, 409] and statuses.count(202) == 1, statuses

    def deployed() -> bool:
        ticket = Ticket.objects.get(pk=ticket_id)
        assert ticket.status not in (TicketStatus.APPLY_FAILED,), ticket.status_reason
        return ticket.status in (TicketStatus.MONITORING, TicketStatus.COMPLETED)

    wait_for(deployed, timeout=180, what="the apply to finish")
    applies = TerraformRun.objects.filter(ticket_id=ticket_id, kind=RunKind.APPLY)
    print(
        f"\n{CONCURRENT_DEPLOYS} concurrent deploy requests -> {statuses.count(202)} accepted, "
        f"{applies.count()} apply run ({statuses.count(409)} refused with 409)"
    )
    assert [(run.status, run.exit_code) for run in applies] == [(RunStatus.SUCCEEDED, 0)]
    assert applies.get().log.count("Apply complete!") == 1
