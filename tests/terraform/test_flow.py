"""The dev flow with the real Terraform binary on the sample stack, run in-process.

Runs are executed by calling the worker's service directly; the real Celery
worker process is exercised in test_worker_e2e.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Deployment, RunLogChunk, TerraformRun
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev
from tests.helpers.sandbox import real_terraform

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]


def test_dev_ticket_plans_applies_checks_and_completes(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    plan, apply, check = ticket.runs.order_by("id")
    assert [r.kind for r in (plan, apply, check)] == [RunKind.PLAN, RunKind.APPLY, RunKind.CHECK]
    assert all(r.status == RunStatus.SUCCEEDED and r.exit_code == 0 for r in (plan, apply, check))
    assert plan.summary["add"] == 24 and plan.summary["destroy"] == 0
    assert len(plan.plan_sha256) == 64 and plan.plan_file.name
    assert apply.plan_id == plan.pk and check.plan_id == plan.pk
    assert "$ terraform init -input=false -no-color" in plan.log
    assert (
        "workspace_dir=" in plan.log and "-var-file=environments/dev/terraform.tfvars" in plan.log
    )
    assert f"Applying plan sha256 {plan.plan_sha256}" in apply.log
    assert "Apply complete! Resources: 24 added" in apply.log
    assert "No changes" in check.log
    # Logs are folded into the run once it finishes; no chunks linger.
    assert not RunLogChunk.objects.exists()
    assert ticket.deployed_at is not None and ticket.completed_at is not None
    transitions = [
        (e.data["from"], e.data["to"])
        for e in AuditEvent.objects.filter(ticket=ticket, action="ticket.transition").order_by("id")
    ]
    assert transitions == [
        ("draft", "planning"),
        ("planning", "approved"),
        ("approved", "applying"),
        ("applying", "monitoring"),
        ("monitoring", "completed"),
    ]
    assert services.audit_verify()[0]
    # The environment's history: what was applied, with which var-file, leaving which state.
    deployment = Deployment.objects.get(ticket=ticket)
    assert (deployment.run_id, deployment.outcome) == (apply.pk, "succeeded")
    assert deployment.commit_sha == ticket.commit_sha and deployment.plan_sha256 == plan.plan_sha256
    tfvars = infra_repo / "terraform/environments/dev/terraform.tfvars"
    assert deployment.var_file_sha256 == hashlib.sha256(tfvars.read_bytes()).hexdigest()
    lineage, serial = deployment.state_after.split("/")
    assert lineage and int(serial) > 0 and plan.base_state in ("", f"{lineage}/{int(serial) - 1}")
    assert deployment.finished_at == apply.finished_at and deployment.is_good


def test_secrets_never_reach_the_stored_log(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    ticket = drain(file_dev(author))
    secret = "dev-not-a-real-password"
    tfvars = (infra_repo / "terraform/environments/dev/terraform.tfvars").read_text()
    assert secret in tfvars
    for run in ticket.runs.all():
        assert secret not in run.log
        assert secret not in str(run.summary)


def test_a_second_ticket_for_the_same_commit_finds_nothing_to_change(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    assert drain(file_dev(author)).status == TicketStatus.COMPLETED
    second = drain(file_dev(author))
    assert second.status == TicketStatus.COMPLETED
    plan = second.runs.get(kind=RunKind.PLAN)
    assert plan.summary["add"] == 0 and plan.has_changes is False


def test_broken_configuration_ends_plan_failed_with_log_and_exit_code(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    (infra_repo / "terraform/broken.tf").write_text('resource "null_resource" "x" {\n')
    sha = commit_all(infra_repo, "break the stack")
    ticket = drain(file_dev(author, commit_sha=sha))
    assert ticket.status == TicketStatus.PLAN_FAILED
    assert ticket.status_reason == "terraform init failed"
    run = ticket.runs.get()
    assert run.status == RunStatus.FAILED and run.exit_code == 1
    assert "broken.tf" in run.log and "error: terraform init failed" in run.log
    assert not run.plan_file and not run.plan_sha256


def test_a_missing_var_file_fails_the_plan_clearly(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    (infra_repo / "terraform/environments/dev/terraform.tfvars").unlink()
    sha = commit_all(infra_repo, "drop dev vars")
    ticket = drain(file_dev(author, commit_sha=sha))
    assert ticket.status == TicketStatus.PLAN_FAILED
    assert "var-file environments/dev/terraform.tfvars does not exist" in ticket.status_reason


def test_a_var_file_outside_the_checkout_is_refused(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    from deployments.models import Environment

    Environment.objects.filter(name="dev").update(var_file="../../../etc/passwd")
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.PLAN_FAILED
    assert "var-file must be a relative path inside the repository" in ticket.status_reason


def test_a_timeout_stops_terraform_and_fails_the_run(
    author: User, infra_repo: Path, inline: list[int], settings: Any, monkeypatch: Any
) -> None:
    from deployments.terraform import runner

    # A stack whose plan blocks on a long local-exec would need a provider we lack
    # offline; instead the binary is wrapped in a script that hangs on `plan`.
    real = real_terraform(monkeypatch)
    wrapper = infra_repo.parent / "slow-terraform"
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = plan ]; then echo thinking; exec sleep 30; fi\nexec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    settings.TERRAFORM_BIN = str(wrapper)
    settings.TERRAFORM_PLAN_TIMEOUT = 2
    monkeypatch.setattr(runner, "_GRACE_SECONDS", 2)
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.PLAN_FAILED
    run = ticket.runs.get()
    assert run.status == RunStatus.FAILED
    assert "terraform plan timed out after 2 seconds" in run.error
    assert "thinking" in run.log


def test_apply_refuses_a_plan_file_whose_digest_changed(
    author: User, infra_repo: Path, inline: list[int], settings: Any
) -> None:
    from deployments.models import Environment

    Environment.objects.filter(name="dev").update(auto_deploy=False)
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.APPROVED
    plan = ticket.current_plan
    assert plan is not None
    with plan.plan_file.open("wb") as handle:  # tampering after approval
        handle.write(b"not the approved plan")
    from django.db import transaction

    with transaction.atomic():
        services.apply_start(services.locked_ticket(ticket.pk), actor=author)
    ticket = drain(ticket)
    assert ticket.status == TicketStatus.APPLY_FAILED
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.FAILED
    assert "refusing to apply: the stored plan file's SHA-256 is" in apply.error
    assert "Apply complete" not in apply.log


def test_a_stale_plan_is_reported_as_stale_and_not_retried(
    author: User, developer: User, infra_repo: Path, inline: list[int]
) -> None:
    from django.db import transaction

    from deployments.models import Environment

    Environment.objects.filter(name="dev").update(auto_deploy=False)
    first = drain(file_dev(author))
    second = drain(file_dev(developer))
    for ticket in (first, second):
        with transaction.atomic():
            services.apply_start(services.locked_ticket(ticket.pk), actor=author)
        drain(ticket)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == TicketStatus.MONITORING
    assert second.status == TicketStatus.APPLY_FAILED
    assert "stale" in second.status_reason and "Run a new plan" in second.status_reason
    assert second.runs.filter(kind=RunKind.APPLY).count() == 1


def test_dev_tickets_wait_for_a_busy_environment_and_replan_before_applying(
    author: User, developer: User, infra_repo: Path, inline: list[int]
) -> None:
    first = file_dev(author)
    second = file_dev(developer)
    run_one = lambda t, kind: services.run_execute(  # noqa: E731
        run_id=TerraformRun.objects.get(ticket=t, kind=kind, status=RunStatus.QUEUED).pk,
        worker="test",
    )
    run_one(first, RunKind.PLAN)  # first: planned, approved, apply queued
    run_one(second, RunKind.PLAN)  # second: planned and approved, but dev is busy
    second.refresh_from_db()
    assert second.status == TicketStatus.APPROVED
    assert second.status_reason.startswith(f"dev is busy: ticket #{first.pk}")
    assert not second.runs.filter(kind=RunKind.APPLY).exists()
    # A manual deploy while busy is refused with the reason, not queued twice.
    response = api_for(developer).post(f"/api/v1/tickets/{second.pk}/deploy/")
    assert response.status_code == 409 and "dev is busy" in response.json()["detail"]
    assert drain(first).status == TicketStatus.COMPLETED
    # Releasing dev re-planned the waiting ticket against the new state, then it deployed.
    second = drain(second)
    assert second.status == TicketStatus.COMPLETED, second.status_reason
    plans = second.runs.filter(kind=RunKind.PLAN).order_by("id")
    assert plans.count() == 2 and plans.last().summary["add"] == 0


def test_a_failed_apply_records_the_state_it_left(
    author: User,
    developer: User,
    infra_repo: Path,
    inline: list[int],
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed apply's deployment says which state it left, so other plans made against
    that state are not called stale (and plans made against another one are)."""
    import shlex

    first = drain(file_dev(author))
    assert first.status == TicketStatus.COMPLETED
    left_by_first = Deployment.objects.get(ticket=first).state_after
    assert left_by_first

    failing = tmp_path / "failing-bin" / "terraform"
    failing.parent.mkdir()
    failing.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = apply ]; then echo "Error: the provider gave up" >&2; exit 1; fi\n'
        f'exec {shlex.quote(real_terraform(monkeypatch))} "$@"\n'
    )
    failing.chmod(0o755)
    settings.TERRAFORM_BIN = str(failing)
    second = drain(file_dev(developer))
    assert second.status == TicketStatus.APPLY_FAILED
    failed = Deployment.objects.get(ticket=second)
    assert failed.outcome == "failed" and failed.state_after == left_by_first
