"""Environment policy refuses contradictions, and the worker never auto-applies a ticket
whose environment has an approval rule or a change window, whatever the row says."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments import policy, services
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, TerraformRun, Ticket
from deployments.services.environments import environment_save, environment_validate
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"approval_rule": {"all_of": ["tech_lead"]}}, "approval rule"),
        ({"emergency_approval_rule": {"any_of": ["tech_lead"], "count": 1}}, "emergency"),
        (
            {"window_days": [2], "window_start": dt.time(2), "window_end": dt.time(4)},
            "change window",
        ),
    ],
)
def test_auto_deploy_with_a_rule_or_a_window_is_refused(changes: dict[str, Any], says: str) -> None:
    env = Environment.objects.get(name="dev")
    assert env.auto_deploy
    for field, value in changes.items():
        setattr(env, field, value)
    with pytest.raises(services.InputError) as refused:
        environment_validate(env)
    assert refused.value.field == "auto_deploy" and says in refused.value.message
    with pytest.raises(services.InputError):
        environment_save(actor="admin", env=env, changed=list(changes))
    env.refresh_from_db()
    assert env.approval_rule == {} and env.window_start is None  # nothing written


def test_turning_auto_deploy_on_for_prod_is_refused() -> None:
    prod = Environment.objects.get(name="prod")
    prod.auto_deploy = True
    with pytest.raises(services.InputError) as refused:
        environment_validate(prod)
    assert refused.value.field == "auto_deploy"


def test_the_seeded_environments_are_consistent() -> None:
    for env in Environment.objects.all():
        environment_validate(env)
    assert policy.auto_deploys(Environment.objects.get(name="dev"))
    assert not policy.auto_deploys(Environment.objects.get(name="staging"))


def test_the_admin_form_names_auto_deploy(admin_client: Any) -> None:
    from deployments.admin import EnvironmentForm

    prod = Environment.objects.get(name="prod")
    data = {field: getattr(prod, field) for field in EnvironmentForm._meta.fields or [] if field}
    import json

    for name in ("approval_rule", "emergency_approval_rule", "window_days"):
        data[name] = json.dumps(data[name])
    for name in ("view_groups", "file_groups", "deploy_groups"):
        data[name] = json.dumps(data[name])
    data["auto_deploy"] = True
    form = EnvironmentForm(data=data, instance=prod)
    assert not form.is_valid()
    assert "auto_deploy" in form.errors


@pytest.mark.parametrize(
    "bad_row",
    [
        {"approval_rule": {"all_of": ["tech_lead", "devops_lead"]}},
        {"window_days": [2, 4], "window_start": dt.time(2), "window_end": dt.time(4)},
    ],
)
def test_a_bad_row_never_makes_the_worker_apply(
    bad_row: dict[str, Any], author: User, monkeypatch: Any, settings: Any, tmp_path: Any
) -> None:
    """A row written past validation (raw SQL, a data migration): auto_deploy plus a rule or
    a window. The finished plan must not start an apply by itself."""
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    Environment.objects.filter(name="dev").update(auto_deploy=True, **bad_row)
    env = Environment.objects.get(name="dev")
    ticket = TicketFactory(environment=env, author=author, status=TicketStatus.PLANNING)
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING)
    digest = hashlib.sha256(b"plan").hexdigest()
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=tf.PlanResult(
            exit_code=0,
            plan_bytes=b"plan",
            plan_sha256=digest,
            summary={"add": 1, "change": 0, "destroy": 0},
            has_changes=True,
        ),
        stale=False,
        terraform_version="1.11.4",
    )
    ticket.refresh_from_db()
    assert not TerraformRun.objects.filter(kind=RunKind.APPLY).exists()
    if "approval_rule" in bad_row:
        assert ticket.status == TicketStatus.AWAITING_APPROVAL
    else:
        assert ticket.status == TicketStatus.APPROVED  # a person deploys it, in the window
    # Nor does the release after another apply, nor the reconciler.
    services.environment_release(environment_id=env.pk)
    services.runs_reconcile()
    assert not TerraformRun.objects.filter(kind=RunKind.APPLY).exists()


def test_a_waiting_ticket_in_a_bad_row_environment_is_not_released(
    author: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    Environment.objects.filter(name="dev").update(
        window_days=[2], window_start=dt.time(2), window_end=dt.time(4)
    )
    ticket = TicketFactory(
        environment=Environment.objects.get(name="dev"),
        author=author,
        status=TicketStatus.APPROVED,
    )
    plan = RunFactory(ticket=ticket, plan_sha256="a" * 64)
    Ticket.objects.filter(pk=ticket.pk).update(current_plan=plan)
    services.environment_release(environment_id=ticket.environment_id)
    assert not TerraformRun.objects.filter(kind=RunKind.APPLY).exists()
    assert (
        not TerraformRun.objects.filter(ticket=ticket, kind=RunKind.PLAN)
        .exclude(pk=plan.pk)
        .exists()
    )
