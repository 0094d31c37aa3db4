"""Worker queues per environment (issue 17, item 2).

Every task that runs Terraform goes to its environment's queue (`terraform.<env>`, with
CELERY_QUEUE_PREFIX), so prod's workers can run apart on hosts that alone hold prod's
credentials: a worker consuming only `terraform.dev` never runs a prod run, the reconciler
re-sends a lost run to its environment's queue, and a worker that does receive a run whose
credentials it does not hold fails it saying why.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.lib.queues import route, terraform_queue, worker_queues
from deployments.models import DriftCheck, Environment, SpeculativePlan, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.aws import credentials_file, probe_terraform, sha256_hex
from tests.helpers.factories import RISK_OK, ROLLBACK_OK, RunFactory, TicketFactory
from tests.helpers.waiting import wait_for
from tests.helpers.workers import purge_broker, spawn_worker, stop_worker

# --- routing ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_terraform_tasks_go_to_their_environments_queue(author: User) -> None:
    prod = Environment.objects.get(name="prod")
    run = RunFactory(ticket=TicketFactory(environment=prod, author=author))
    assert run.environment.name == "prod"
    check = DriftCheck.objects.create(
        environment=Environment.objects.get(name="staging"), started_at=timezone.now()
    )
    plan = SpeculativePlan.objects.create(
        environment=Environment.objects.get(name="dev"), commit_sha="a" * 40, requested_by=author
    )
    assert route("deployments.tasks.run_execute", [run.pk], {}, {}) == {"queue": "terraform.prod"}
    assert route("deployments.tasks.run_execute", [], {"run_id": run.pk}, {}) == {
        "queue": "terraform.prod"
    }
    assert route("deployments.tasks.drift_check_run", [check.pk], {}, {}) == {
        "queue": "terraform.staging"
    }
    assert route("deployments.tasks.speculative_plan_run", [plan.pk], {}, {}) == {
        "queue": "terraform.dev"
    }
    # Anything else keeps the portal's default queue; a vanished row finds nothing to do.
    assert route("deployments.tasks.webhook_process", [1], {}, {}) is None
    assert route("deployments.tasks.run_execute", [run.pk + 1000], {}, {}) is None


@pytest.mark.django_db
def test_celery_itself_routes_by_environment(author: User) -> None:
    """The configured router, as Celery applies it when a task is sent."""
    from changecontrol.celery import app

    run = RunFactory(
        ticket=TicketFactory(environment=Environment.objects.get(name="prod"), author=author)
    )
    options = app.amqp.router.route({}, "deployments.tasks.run_execute", args=[run.pk])
    assert options["queue"].name == "terraform.prod"
    assert options["queue"].routing_key == "terraform.prod"
    portal = app.amqp.router.route({}, "deployments.tasks.webhook_process", args=[1])
    assert portal["queue"].name == "portal"


def test_the_queue_prefix_applies(settings: Any) -> None:
    settings.CELERY_TERRAFORM_QUEUE = "blue-terraform"
    settings.CELERY_TASK_DEFAULT_QUEUE = "blue-portal"
    assert terraform_queue("prod") == "blue-terraform.prod"
    assert worker_queues(["dev", "prod"], portal=True) == [
        "blue-portal",
        "blue-terraform.dev",
        "blue-terraform.prod",
    ]


@pytest.mark.django_db
def test_worker_queues_prints_the_q_list() -> None:
    out = io.StringIO()
    call_command("worker_queues", stdout=out)
    assert out.getvalue().strip() == "terraform.dev,terraform.staging,terraform.prod"
    out = io.StringIO()
    call_command("worker_queues", "--environments", "prod", "--portal", stdout=out)
    assert out.getvalue().strip() == "portal,terraform.prod"
    with pytest.raises(CommandError, match="no environment 'qa'; one of: dev, staging, prod"):
        call_command("worker_queues", "--environments", "prod,qa")


# --- real workers ---------------------------------------------------------------------------


def _file_prod(user: User, title: str) -> Ticket:
    filed = api_for(user).post(
        "/api/v1/tickets/",
        {
            "title": title,
            "environment": "prod",
            "description": "per-environment workers",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    return Ticket.objects.get(pk=filed.json()["id"])


def _settled(ticket: Ticket, *waiting: str) -> Ticket | None:
    ticket.refresh_from_db()
    return None if ticket.status in waiting else ticket


def _credentials(settings: Any, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    for env in ("dev", "prod"):
        Environment.objects.filter(name=env).update(
            plan_credentials=f"{env}-plan", apply_credentials=f"{env}-apply"
        )
    dev_file, dev_markers = credentials_file(tmp_path, ("dev",))
    prod_file, prod_markers = credentials_file(tmp_path, ("prod",))
    return dev_file, prod_file, {**dev_markers, **prod_markers}


@pytest.mark.worker
@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_dev_worker_never_runs_prod_and_prods_worker_runs_it_apart(
    author: User, infra_repo: Path, tmp_path: Path, settings: Any
) -> None:
    dev_file, prod_file, markers = _credentials(settings, tmp_path)
    probe = str(probe_terraform(tmp_path))
    purge_broker()
    dev_host = spawn_worker(
        tmp_path,
        infra_repo,
        name="dev-host",
        queues=[terraform_queue("dev")],
        env={"TERRAFORM_CREDENTIALS_FILE": str(dev_file), "TERRAFORM_BIN": probe},
    )
    prod_host = None
    try:
        prod = _file_prod(author, "Prod waits for its own workers")
        dev = api_for(author).post(
            "/api/v1/tickets/", {"title": "Dev", "environment": "dev"}, format="json"
        )
        assert dev.status_code == 201, dev.json()
        dev_ticket = Ticket.objects.get(pk=dev.json()["id"])
        done = wait_for(
            lambda: _settled(dev_ticket, "planning", "approved", "applying", "monitoring"),
            timeout=300,
            what="the dev ticket on the dev worker",
        )
        assert done.status == TicketStatus.COMPLETED, done.status_reason
        prod_plan = prod.runs.get()
        prod_plan.refresh_from_db()
        # The dev worker ran dev's three runs and never touched prod's plan, queued the
        # whole time on terraform.prod.
        assert prod_plan.status == RunStatus.QUEUED and prod_plan.worker == ""
        dev_runs = {r.kind: r for r in dev_ticket.runs.all()}
        assert all(r.worker.startswith("dev-host-") for r in dev_runs.values())
        assert f"marker={sha256_hex(markers['dev-plan'])}" in dev_runs[RunKind.PLAN].log
        assert f"marker={sha256_hex(markers['dev-apply'])}" in dev_runs[RunKind.APPLY].log

        # The message is lost (a broker restart); the reconciler sends the run again, to
        # prod's queue, where prod's worker, holding prod's credentials, runs it.
        purge_broker()
        TerraformRun.objects.filter(pk=prod_plan.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=1)
        )
        assert services.runs_reconcile()["resent"] >= 1
        prod_host = spawn_worker(
            tmp_path,
            infra_repo,
            name="prod-host",
            queues=[terraform_queue("prod")],
            env={"TERRAFORM_CREDENTIALS_FILE": str(prod_file), "TERRAFORM_BIN": probe},
        )
        planned = wait_for(
            lambda: _settled(prod, "planning"), timeout=300, what="prod's plan on its worker"
        )
        assert planned.status == TicketStatus.AWAITING_APPROVAL, planned.status_reason
        prod_plan.refresh_from_db()
        assert prod_plan.worker.startswith("prod-host-")
        assert f"marker={sha256_hex(markers['prod-plan'])}" in prod_plan.log
        for name in ("dev-plan", "dev-apply", "prod-apply"):
            assert sha256_hex(markers[name]) not in prod_plan.log, name
    finally:
        stop_worker(dev_host)
        if prod_host is not None:
            stop_worker(prod_host)
    dev_log = (tmp_path / "dev-host.log").read_text()
    assert "run_execute[" in dev_log and "terraform.prod" not in dev_log


@pytest.mark.worker
@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_worker_without_the_environments_credentials_fails_its_run_saying_why(
    author: User, infra_repo: Path, tmp_path: Path, settings: Any
) -> None:
    """An operator gave a dev host prod's queue by mistake: its runs fail before Terraform
    starts, naming the missing credentials, instead of running with someone else's."""
    dev_file, _prod_file, _markers = _credentials(settings, tmp_path)
    purge_broker()
    misplaced = spawn_worker(
        tmp_path,
        infra_repo,
        name="dev-host",
        queues=[terraform_queue("prod")],
        env={"TERRAFORM_CREDENTIALS_FILE": str(dev_file)},
    )
    try:
        prod = _file_prod(author, "Prod on the wrong host")
        failed = wait_for(lambda: _settled(prod, "planning"), timeout=180, what="the refusal")
    finally:
        stop_worker(misplaced)
    run = failed.runs.get()
    assert failed.status == TicketStatus.PLAN_FAILED
    assert run.status == RunStatus.FAILED and run.worker.startswith("dev-host-")
    assert re.search(
        r"this worker \(\S+\) does not hold the credential set 'prod-plan' that prod's plans "
        r"get \(its TERRAFORM_CREDENTIALS_FILE has no set 'prod-plan'\); the run did not "
        r"start\. prod's runs belong on the workers that hold its credentials \(those "
        r"consuming queue terraform\.prod\)",
        failed.status_reason,
    ), failed.status_reason
    assert "$ terraform" not in run.log


@pytest.mark.worker
@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_worker_started_without_q_serves_every_environment(
    celery_worker_process: Any, author: User, head_sha: str, tmp_path: Path
) -> None:
    """`make run`'s worker (no -Q) consumes every environment's queue: a speculative plan of
    staging runs there too."""
    answer = api_for(author).post(
        "/api/v1/plans/", {"environment": "staging", "commit_sha": head_sha}, format="json"
    )
    assert answer.status_code == 202, answer.json()
    plan = SpeculativePlan.objects.get(pk=answer.json()["id"])

    def finished() -> SpeculativePlan | None:
        plan.refresh_from_db()
        return plan if plan.status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None

    wait_for(finished, timeout=180, what="the speculative plan")
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    assert plan.worker.startswith("test-worker-")
    log = (tmp_path / "test-worker.log").read_text()
    assert "no -Q given: consuming the Terraform queues of every environment" in log
