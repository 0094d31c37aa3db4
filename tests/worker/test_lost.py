"""A worker killed mid-apply: Terraform is interrupted, the run ends `interrupted` (never
`succeeded`, never run again) and the ticket says how to recover."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.sandbox import real_terraform, sandbox_sees
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.terraform, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hanging_apply(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A terraform whose `apply` hangs, and records the SIGINT it gets when its worker dies
    (in a folder the sandbox lets it write, as a provider would reach its cloud)."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir(mode=0o777)
    marker_dir.chmod(0o777)  # written by the sandbox's own uid
    marker = marker_dir / "apply-interrupted"
    real = real_terraform(monkeypatch)
    sandbox_sees(monkeypatch, writable=(marker_dir,))
    wrapper = tmp_path / "bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = apply ]; then\n'
        # Like Terraform, it stops what it started before it exits (its `sleep` would
        # otherwise hold the environment lock's file it inherited).
        f"  trap 'echo interrupted > {marker}; kill $! 2>/dev/null; exit 130' INT\n"
        "  echo 'applying slowly'\n"
        "  sleep 60 & wait $!\n"
        "  exit 0\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("TERRAFORM_BIN", str(wrapper))
    return marker


def _kill_worker(pid: int) -> None:
    """SIGKILL the Celery main process and its pool processes (as an OOM kill would),
    leaving Terraform itself to what the product arranged for it."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    for child in children.split():
        if b"celery" in Path(f"/proc/{child}/cmdline").read_bytes():
            _kill_worker(int(child))
    os.kill(pid, signal.SIGKILL)


def test_killing_the_worker_mid_apply_leaves_the_run_interrupted(
    hanging_apply: Path, request: pytest.FixtureRequest, author: User
) -> None:
    Environment.objects.filter(name="dev").update(auto_deploy=True)
    worker = request.getfixturevalue("celery_worker_process")
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "doomed", "environment": "dev"}, format="json"
    )
    assert response.status_code == 201
    ticket_id = response.json()["id"]

    def applying() -> TerraformRun | None:
        return TerraformRun.objects.filter(
            ticket_id=ticket_id, kind=RunKind.APPLY, status=RunStatus.RUNNING
        ).first()

    run = wait_for(applying, timeout=120, what="the apply to start")
    wait_for(
        lambda: "applying slowly" in "".join(run.chunks.values_list("text", flat=True)),
        timeout=30,
        what="the apply's first output",
    )

    _kill_worker(worker.pid)
    worker.wait(timeout=10)
    wait_for(hanging_apply.exists, timeout=10, what="Terraform to be interrupted")

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nobody has noticed yet
    # The beat notices as soon as the dead worker's environment lock is free (its last
    # thread may still be exiting for a moment after Terraform heard SIGINT).
    wait_for(
        lambda: services.runs_reconcile()["interrupted"],
        timeout=30,
        what="the reconciler to find the environment lock free",
    )
    run.refresh_from_db()
    ticket = Ticket.objects.get(pk=ticket_id)
    assert run.status == RunStatus.INTERRUPTED and run.exit_code is None
    assert "applying slowly" in run.log  # the partial log is kept
    assert ticket.status == TicketStatus.APPLY_FAILED
    assert "force-unlock" in ticket.status_reason and "run a new plan" in ticket.status_reason
    # Never re-run: there is still exactly one apply run, and it is not queued again.
    assert TerraformRun.objects.filter(ticket_id=ticket_id, kind=RunKind.APPLY).count() == 1
