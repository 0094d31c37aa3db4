"""The seam after a run (services.lifecycle): a capability adds a step to after_plan,
after_apply or after_check, and it runs in order, in the transaction that records the run's
outcome, with the ticket already moved."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments import services
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, TerraformRun, Ticket
from deployments.services import lifecycle
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)


def _finish_plan(ticket: Ticket) -> TerraformRun:
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING, plan_sha256="")
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=tf.PlanResult(
            exit_code=0,
            plan_bytes=b"plan",
            plan_sha256=hashlib.sha256(b"plan").hexdigest(),
            summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
            has_changes=True,
        ),
        stale=False,
        terraform_version="1.11.4",
    )
    return run


def test_a_step_added_after_plan_runs_between_the_risk_and_the_approval_route(
    author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where "evaluate Rego policies after each plan" goes (docs/architecture.md): the plan
    is the ticket's current plan and scored, nobody has been asked to approve it yet."""
    seen: list[dict[str, Any]] = []

    def evaluate(ticket: Ticket, run: TerraformRun) -> None:
        seen.append(
            {
                "status": ticket.status,
                "current_plan": ticket.current_plan_id,
                "scored": bool(ticket.risk),
                "in_transaction": connection.in_atomic_block,
            }
        )
        services.audit_record(actor="worker", action="policy.evaluate", ticket=ticket)

    steps = list(lifecycle.after_plan)
    steps.insert(steps.index(services.approvals.approval_route), evaluate)
    monkeypatch.setattr(lifecycle, "after_plan", steps)
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.PLANNING,
    )
    run = _finish_plan(ticket)
    assert seen == [
        {
            "status": TicketStatus.PLANNING,
            "current_plan": run.pk,
            "scored": True,
            "in_transaction": True,
        }
    ]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    actions = list(
        AuditEvent.objects.filter(ticket=ticket).order_by("id").values_list("action", flat=True)
    )
    assert actions[-3:] == ["ticket.risk", "policy.evaluate", "ticket.transition"]


def test_a_step_that_raises_undoes_the_whole_outcome(
    author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ticket: Ticket, run: TerraformRun) -> None:
        raise RuntimeError("a bug in a step")

    monkeypatch.setattr(lifecycle, "after_plan", [*lifecycle.after_plan, broken])
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.PLANNING,
    )
    with pytest.raises(RuntimeError):
        _finish_plan(ticket)
    ticket.refresh_from_db()
    run = ticket.runs.get()
    assert ticket.status == TicketStatus.PLANNING and ticket.current_plan_id is None
    assert run.status == RunStatus.RUNNING  # the reconciler interrupts it later
    assert not AuditEvent.objects.filter(ticket=ticket, action="run.finish").exists()


def test_a_failed_plan_runs_no_step(author: User, monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[int] = []
    monkeypatch.setattr(lifecycle, "after_plan", [lambda t, r: called.append(r.pk)])
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.PLANNING,
    )
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING, plan_sha256="")
    services.run_finish(
        run_id=run.pk,
        exit_code=1,
        error="terraform plan failed",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PLAN_FAILED and called == []


def test_after_apply_steps_run_in_their_order(
    author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    monkeypatch.setattr(
        lifecycle,
        "after_apply",
        [
            lambda t, r: order.append(f"first:{t.status}"),
            lambda t, r: order.append(f"second:{r.kind}"),
        ],
    )
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.APPLYING,
    )
    plan = RunFactory(ticket=ticket)
    run = RunFactory(ticket=ticket, kind=RunKind.APPLY, plan=plan, status=RunStatus.RUNNING)
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        applied=tf.ApplyResult(exit_code=0),
    )
    assert order == ["first:monitoring", "second:apply"]
