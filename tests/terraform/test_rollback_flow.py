"""Rollback and drift detection end to end on the real Terraform binary (issue 9)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Deployment, DriftCheck, FollowUp, Ticket
from deployments.terraform.source import commit_all
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK, ROLLBACK_OK
from tests.helpers.flow import drain, file_dev

pytestmark = [pytest.mark.terraform, pytest.mark.django_db(transaction=True)]

# Thursday 26 Nov 2026: prod's window is 02:00-04:00 New York = 07:00-09:00 UTC.
THURSDAY_0730_UTC = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)
THURSDAY_0850_UTC = dt.datetime(2026, 11, 26, 8, 50, tzinfo=dt.UTC)
THURSDAY_0920_UTC = dt.datetime(2026, 11, 26, 9, 20, tzinfo=dt.UTC)  # window shut


def _state(tmp_path: Path, workspace: str) -> dict[str, Any]:
    found = list((tmp_path / "state").glob(f"**/{workspace}/terraform.tfstate"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def _triggers(state: dict[str, Any]) -> dict[str, Any]:
    """Every resource's inputs (its triggers), by address: what the commit configured."""
    out = {}
    for resource in state["resources"]:
        for index, instance in enumerate(resource["instances"]):
            key = f"{resource.get('module', '')}.{resource['type']}.{resource['name']}[{index}]"
            out[key] = instance["attributes"].get("triggers")
    return out


def _prod_deploy(
    author: User, tech_lead: User, devops_lead: User, operations: User, *, sha: str, at: Any
) -> Ticket:
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": f"prod @ {sha[:7]}",
            "environment": "prod",
            "commit_sha": sha,
            "description": "a change",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
    for lead in (tech_lead, devops_lead):
        sha256 = Ticket.objects.get(pk=ticket.pk).current_plan.plan_sha256
        approved = api_for(lead).post(
            f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": sha256}, format="json"
        )
        assert approved.status_code == 200, approved.json()
    with time_machine.travel(at, tick=True):
        deployed = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
        assert deployed.status_code == 202, deployed.json()
        ticket = drain(ticket)
    assert ticket.status == TicketStatus.MONITORING, ticket.status_reason
    return ticket


def _good_then_bad(
    people: tuple[User, User, User, User], infra_repo: Path, tmp_path: Path
) -> tuple[Ticket, Ticket, str, dict[str, Any]]:
    """Two prod deploys in Thursday's window: A (the tip, good) at 07:30 UTC, then B (the
    CPU alarm at 85 %) at 08:50. Returns both tickets, A's commit and A's resources."""
    sha_a = commit_all(infra_repo, "nothing changed")  # the tip, as a commit of its own
    first = _prod_deploy(*people, sha=sha_a, at=THURSDAY_0730_UTC)
    state_a = _triggers(_state(tmp_path, "prod"))
    tfvars = infra_repo / "terraform/environments/prod/terraform.tfvars"
    tfvars.write_text(
        tfvars.read_text().replace("alarm_cpu_threshold = 70", "alarm_cpu_threshold = 85")
    )
    sha_b = commit_all(infra_repo, "prod: alarm at 85% CPU")
    second = _prod_deploy(*people, sha=sha_b, at=THURSDAY_0850_UTC)
    assert _triggers(_state(tmp_path, "prod")) != state_a
    return first, second, sha_a, state_a


@pytest.mark.usefixtures("without_promotion_gate")
def test_roll_back_a_prod_deploy_outside_the_window(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
    tmp_path: Path,
    inline: list[int],
) -> None:
    people = (author, tech_lead, devops_lead, operations)
    first, second, sha_a, state_a = _good_then_bad(people, infra_repo, tmp_path)

    # ops1 rolls B back half an hour later, after the window closed: an immediate rollback.
    with time_machine.travel(THURSDAY_0920_UTC, tick=True):
        opened = api_for(operations).post(f"/api/v1/tickets/{second.pk}/rollback/")
        assert opened.status_code == 201, opened.json()
        assert opened.json()["rollback_mode"] == "immediate"
        rollback = drain(Ticket.objects.get(pk=opened.json()["id"]))
        assert rollback.status == TicketStatus.AWAITING_APPROVAL, rollback.status_reason
        plan = rollback.current_plan
        assert plan is not None and plan.commit_sha == sha_a
        assert plan.var_file == "environments/prod/terraform.tfvars"
        assert plan.summary["change"] + plan.summary["add"] > 0  # it undoes B's change
        # One Tech Lead suffices (not two); the rollback's author could not approve it.
        approved = api_for(tech_lead).post(
            f"/api/v1/tickets/{rollback.pk}/approve/",
            {"plan_sha256": plan.plan_sha256},
            format="json",
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        # A normal ticket could not deploy now; the immediate rollback may.
        deployed = api_for(operations).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
        assert deployed.status_code == 202, deployed.json()
        rollback = drain(rollback)

    assert rollback.status == TicketStatus.MONITORING, rollback.status_reason
    apply = rollback.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED
    assert apply.commit_sha == sha_a and "Apply complete!" in apply.log
    # The environment is back at commit A's configuration.
    assert _triggers(_state(tmp_path, "prod")) == state_a
    second.refresh_from_db()
    assert second.status == TicketStatus.ROLLED_BACK
    assert f"rolled back by ticket #{rollback.pk}" in second.status_reason
    undone = Deployment.objects.get(ticket=second)
    mine = Deployment.objects.get(ticket=rollback)
    assert undone.rolled_back_by == mine and undone.rolled_back_at == apply.finished_at
    assert mine.commit_sha == sha_a and mine.change_type == "rollback"
    post_mortem = FollowUp.objects.get(ticket=second, kind="post_mortem")
    assert post_mortem.due_at == apply.finished_at + dt.timedelta(hours=24)
    assert post_mortem.deployment_run == apply
    assert Notification.objects.filter(event="rollback.deployed", ticket=second).exists()
    window = rollback.audit_events.filter(action="ticket.transition", data__to="applying")
    assert "immediate rollback" in window.get().data["window"]
    assert first.pk != second.pk
    # The last known good is A again; B can never be chosen.
    assert Deployment.objects.get(ticket=first).is_good and not undone.is_good


@pytest.mark.usefixtures("without_promotion_gate")
@pytest.mark.parametrize("start", ["approver", "on_approval"])
def test_an_immediate_rollback_is_applied_with_one_lead_and_no_deployer(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    infra_repo: Path,
    tmp_path: Path,
    inline: list[int],
    start: str,
) -> None:
    """Issue 22's incident path on the real binary: operations presses Roll back, ONE lead
    approves, and the lead starts it (``approver``) or it starts on that approval
    (``on_approval``); nobody else acts, and it is applied after the window closed. The
    opener is the rollback's author, so never its approver (separation of duties)."""
    from deployments.models import AuditEvent, Environment

    Environment.objects.filter(name="prod").update(immediate_rollback_start=start)
    people = (author, tech_lead, devops_lead, operations)
    _, bad, sha_a, state_a = _good_then_bad(people, infra_repo, tmp_path)

    with time_machine.travel(THURSDAY_0920_UTC, tick=True):
        opened = api_for(operations).post(f"/api/v1/tickets/{bad.pk}/rollback/")
        assert opened.status_code == 201 and opened.json()["rollback_mode"] == "immediate"
        rollback = drain(Ticket.objects.get(pk=opened.json()["id"]))
        assert rollback.status == TicketStatus.AWAITING_APPROVAL, rollback.status_reason
        sha256 = rollback.current_plan.plan_sha256
        # The opener may not approve what they opened.
        mine = api_for(operations).post(
            f"/api/v1/tickets/{rollback.pk}/approve/", {"plan_sha256": sha256}, format="json"
        )
        assert mine.status_code == 403
        approved = api_for(tech_lead).post(
            f"/api/v1/tickets/{rollback.pk}/approve/", {"plan_sha256": sha256}, format="json"
        )
        assert approved.status_code == 200, approved.json()
        if start == "approver":
            assert approved.json()["status"] == "approved"
            deployed = api_for(tech_lead).post(f"/api/v1/tickets/{rollback.pk}/deploy/")
            assert deployed.status_code == 202, deployed.json()
        else:
            assert approved.json()["status"] == "applying", approved.json()
        rollback = drain(rollback)

    assert rollback.status == TicketStatus.MONITORING, rollback.status_reason
    apply = rollback.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED and apply.commit_sha == sha_a
    assert _triggers(_state(tmp_path, "prod")) == state_a
    acted = set(
        AuditEvent.objects.filter(ticket=rollback)
        .exclude(actor=None)
        .exclude(action="access.refused")
        .values_list("actor__username", flat=True)
    )
    assert acted == {operations.username, tech_lead.username}
    action = "rollback.start_by_approver" if start == "approver" else "rollback.start_on_approval"
    started = AuditEvent.objects.get(ticket=rollback, action=action)
    assert started.actor == tech_lead and started.data["run"] == apply.pk


def test_a_rollback_refuses_a_var_file_that_changed_since(
    author: User,
    tech_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    good = drain(file_dev(author))
    tfvars = infra_repo / "terraform/environments/dev/terraform.tfvars"
    tfvars.write_text(tfvars.read_text() + "\n# touched\n")
    later = drain(file_dev(author, commit_sha=commit_all(infra_repo, "touch dev vars")))
    assert good.status == later.status == TicketStatus.COMPLETED
    # The record says another var-file was applied than the one at that commit now.
    Deployment.objects.filter(ticket=good).update(var_file_sha256="0" * 64)
    opened = api_for(tech_lead).post(f"/api/v1/tickets/{later.pk}/rollback/")
    assert opened.status_code == 201, opened.json()
    rollback = drain(Ticket.objects.get(pk=opened.json()["id"]))
    assert rollback.status == TicketStatus.PLAN_FAILED
    assert "is not the one the deployment applied" in rollback.status_reason
    assert not rollback.runs.filter(kind=RunKind.APPLY).exists()


def test_a_dev_rollback_applies_at_once(
    author: User,
    tech_lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    good = drain(file_dev(author))
    tfvars = infra_repo / "terraform/environments/dev/terraform.tfvars"
    text = tfvars.read_text()
    assert "alarm_cpu_threshold" in text
    tfvars.write_text(
        "\n".join(
            "alarm_cpu_threshold = 91" if line.startswith("alarm_cpu_threshold") else line
            for line in text.splitlines()
        )
        + "\n"
    )
    later = drain(file_dev(author, commit_sha=commit_all(infra_repo, "dev alarm at 91")))
    opened = api_for(tech_lead).post(f"/api/v1/tickets/{later.pk}/rollback/")
    assert opened.status_code == 201, opened.json()
    rollback = drain(Ticket.objects.get(pk=opened.json()["id"]))
    # dev needs no approval: the rollback plans, applies, checks and completes.
    assert rollback.status == TicketStatus.COMPLETED, rollback.status_reason
    later.refresh_from_db()
    assert later.status == TicketStatus.ROLLED_BACK
    assert rollback.commit_sha == good.commit_sha


def test_drift_is_detected_after_an_out_of_band_change(
    author: User,
    operations: User,
    devops_lead: User,
    infra_repo: Path,
    tmp_path: Path,
    inline: list[int],
) -> None:
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.COMPLETED
    out = io.StringIO()
    call_command("check_drift", "dev", stdout=out)  # no drift: returns normally
    assert "No drift" in out.getvalue()
    clean = DriftCheck.objects.get()
    assert clean.status == "no_drift" and clean.exit_code == 0
    assert clean.deployment == Deployment.objects.get(ticket=ticket)

    # Someone removes a resource from the state behind the portal's back.
    path = next((tmp_path / "state").glob("**/dev/terraform.tfstate"))
    state = json.loads(path.read_text())
    removed = state["resources"].pop(0)
    state["serial"] += 1
    path.write_text(json.dumps(state))

    with pytest.raises(SystemExit) as drifted:
        call_command("check_drift", "dev")
    assert drifted.value.code == 2
    check = DriftCheck.objects.order_by("-pk").first()
    assert check is not None and check.status == "drifted" and check.exit_code == 2
    assert check.summary["add"] >= 1
    addresses = [r["address"] for r in check.summary["resources"]]
    assert any(removed["name"] in address for address in addresses)
    assert "dev-not-a-real-password" not in check.log
    told = Notification.objects.filter(event="drift.detected")
    assert {n.recipient for n in told} == {operations, devops_lead}
    assert told.first().data["environment"] == "dev"
    assert told.first().data["summary"]["add"] == check.summary["add"]
    # Shown on the environments page and in the API.
    from django.test import Client

    client = Client()
    client.force_login(operations)
    html = client.get("/environments/").content.decode()
    assert 'id="drift-dev"' in html and "Drift detected" in html
    reports = api_for(operations).get("/api/v1/environments/dev/drift/").json()
    assert [r["status"] for r in reports] == ["drifted", "no_drift"]
    assert reports[0]["summary"]["add"] == check.summary["add"]
