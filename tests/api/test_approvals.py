"""Approve, reject and deploy through the API: each refusal with its status and sentence."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Approval, AuditEvent, Environment, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.tickets import IN_WINDOW, OUTSIDE_WINDOW, approve, approved, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


def test_prod_needs_tech_lead_and_devops_lead(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = awaiting("prod", author)
    first = approve(tech_lead, ticket, "looks right")
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["status"] == "awaiting_approval"
    assert body["approval_status"]["missing"] == ["DevOps Lead"]
    assert body["approvals"][0] | {"created_at": None} == {
        "id": body["approvals"][0]["id"],
        "approver": "tess",
        "role": "tech_lead",
        "held_roles": ["tech_lead"],
        "plan_run": ticket.current_plan_id,
        "plan_sha256": ticket.current_plan.plan_sha256,
        "comment": "looks right",
        "created_at": None,
        "void": False,
        "voided_at": None,
        "void_reason": "",
    }
    second = approve(devops_lead, ticket)
    assert second.status_code == 200
    assert second.json()["status"] == "approved"
    assert second.json()["approval_status"]["met"] is True
    assert "approved by tess (Tech Lead), otto (DevOps Lead)" in second.json()["status_reason"]
    grants = AuditEvent.objects.filter(ticket=ticket, action="approval.grant")
    assert [e.actor_name for e in grants.order_by("id")] == ["tess", "otto"]


def test_staging_needs_one_lead(author: User, lead: User) -> None:
    ticket = awaiting("staging", author)
    response = approve(lead, ticket)
    assert response.status_code == 200 and response.json()["status"] == "approved"


@pytest.mark.parametrize(
    ("who", "code", "message"),
    [
        ("author", 403, "you authored this ticket; someone else must approve it"),
        # Other developers, leads and QA do not see prod tickets at all (SPEC §2).
        ("developer", 404, "No such ticket"),
        ("lead", 404, "No such ticket"),
        ("qa", 404, "No such ticket"),
        (
            "operations",
            403,
            "prod needs Tech Lead and DevOps Lead, two different people; "
            "you hold none of those roles",
        ),
    ],
)
def test_who_cannot_approve_prod_is_told_why(
    request: pytest.FixtureRequest, author: User, who: str, code: int, message: str
) -> None:
    ticket = awaiting("prod", author)
    user = request.getfixturevalue(who)
    response = approve(user, ticket)
    assert response.status_code == code
    assert response.json() == {"detail": message}
    assert not Approval.objects.exists()


def test_second_tech_lead_is_told_who_filled_the_role(author: User, tech_lead: User) -> None:
    from tests.helpers.users import persona

    other = persona("tom", "tech_lead")
    ticket = awaiting("prod", author)
    assert approve(tech_lead, ticket).status_code == 200
    response = approve(other, ticket)
    assert response.status_code == 403
    assert (
        response.json()["detail"] == "prod needs a DevOps Lead; tess already approved as Tech Lead"
    )


def test_approving_twice_is_409(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    response = approve(tech_lead, ticket)
    assert response.status_code == 409
    assert response.json()["detail"] == "you have already approved this plan"
    assert Approval.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (TicketStatus.PLANNING, "the plan is still running; approve it once it has finished"),
        (TicketStatus.PLAN_FAILED, "the last plan failed; there is no plan to approve"),
    ],
)
def test_approval_while_planning_or_after_a_failure_is_409(
    author: User, tech_lead: User, status: str, message: str
) -> None:
    ticket = awaiting("prod", author)
    Ticket.objects.filter(pk=ticket.pk).update(status=status, current_plan=None)
    response = approve(tech_lead, ticket)
    assert response.status_code == 409 and response.json()["detail"] == message


def test_a_new_plan_voids_earlier_approvals_and_keeps_them_visible(
    author: User, tech_lead: User, devops_lead: User, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    replanned = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/plan/", {"reason": "bumped the AMI"}, format="json"
    )
    assert replanned.status_code == 202
    detail = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["status"] == "planning"
    (old,) = detail["approvals"]
    assert old["void"] is True and old["void_reason"] == (
        f"plan run {replanned.json()['id']} replaced the approved plan "
        "(re-planned by alice): bumped the AMI"
    )
    assert detail["approval_status"]["missing"] == ["Tech Lead", "DevOps Lead"]
    # The new plan succeeds: both approve it again, tess included.
    new_plan = TerraformRun.objects.get(pk=replanned.json()["id"])
    new_plan.status, new_plan.plan_sha256 = RunStatus.SUCCEEDED, "c" * 64
    new_plan.save()
    Ticket.objects.filter(pk=ticket.pk).update(
        status=TicketStatus.AWAITING_APPROVAL, current_plan=new_plan
    )
    assert approve(devops_lead, ticket).status_code == 200
    final = approve(tech_lead, ticket).json()
    assert final["status"] == "approved"
    standing = [a for a in final["approvals"] if not a["void"]]
    assert {a["plan_sha256"] for a in standing} == {"c" * 64}
    assert AuditEvent.objects.filter(ticket=ticket, action="approval.void").count() == 1


def test_reject_needs_a_reason_and_an_approver(
    author: User, tech_lead: User, operations: User
) -> None:
    ticket = awaiting("prod", author)
    client = api_for(tech_lead)
    empty = client.post(f"/api/v1/tickets/{ticket.pk}/reject/", {}, format="json")
    assert empty.status_code == 400 and empty.json()["detail"] == "reason: This field is required."
    refused = api_for(operations).post(
        f"/api/v1/tickets/{ticket.pk}/reject/", {"reason": "no"}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("only an approver of prod tickets")
    own = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/reject/", {"reason": "no"}, format="json"
    )
    assert own.json()["detail"] == "you authored this ticket; cancel it instead of rejecting it"
    done = client.post(
        f"/api/v1/tickets/{ticket.pk}/reject/", {"reason": "no rollback plan"}, format="json"
    )
    assert done.status_code == 200
    assert done.json()["status"] == "rejected"
    assert done.json()["rejections"][0]["reason"] == "no rollback plan"
    assert approve(tech_lead, ticket).status_code == 409


@time_machine.travel(IN_WINDOW, tick=False)
def test_operations_deploy_prod_inside_the_window(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    monkeypatch: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: sent.append(run_id))
    ticket = approved("prod", author, tech_lead, devops_lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 202, response.json()
    run = TerraformRun.objects.get(pk=response.json()["id"])
    assert run.kind == RunKind.APPLY and run.plan_id == ticket.current_plan_id
    assert sent == [run.pk]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPLYING
    again = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert again.status_code == 409
    assert again.json()["detail"] == "a ticket that is applying cannot be deployed"
    assert TerraformRun.objects.filter(kind=RunKind.APPLY).count() == 1


@time_machine.travel(OUTSIDE_WINDOW, tick=False)
def test_prod_deploy_outside_the_window_is_409_naming_the_next_window(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "prod deploys only inside the change window (Tue/Thu 02:00\u201304:00 America/New_York); "
        "the next window opens Thu 26 Nov 02:00 EST (07:00 UTC), in 1 day 19 h"
    )


@time_machine.travel(IN_WINDOW, tick=False)
def test_only_operations_deploy_prod(author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    response = api_for(tech_lead).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 403
    assert response.json()["detail"] == "prod deploys are done by Operations"


def test_deploy_before_approval_names_what_is_missing(
    author: User, tech_lead: User, operations: User
) -> None:
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    with time_machine.travel(IN_WINDOW, tick=False):
        response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 409
    assert (
        response.json()["detail"] == "the ticket is not approved yet: it still needs a DevOps Lead"
    )


def test_staging_deploy_by_the_dev_team_when_the_environment_is_free(
    author: User, lead: User, qa: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    first = approved("staging", author, lead)
    second = approved("staging", author, lead)
    assert api_for(qa).post(f"/api/v1/tickets/{first.pk}/deploy/").status_code == 202
    busy = api_for(author).post(f"/api/v1/tickets/{second.pk}/deploy/")
    assert busy.status_code == 409
    assert (
        busy.json()["detail"] == f"staging is busy: ticket #{first.pk} ({first.title}) is applying"
    )
    second.refresh_from_db()
    assert second.status == TicketStatus.APPROVED


def test_emergency_prod_ticket_needs_one_lead_and_may_deploy_outside_the_window(
    author: User, devops_lead: User, operations: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = awaiting("prod", author, change_type="emergency")
    assert approve(devops_lead, ticket).json()["status"] == "approved"
    with time_machine.travel(OUTSIDE_WINDOW, tick=False):
        response = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert response.status_code == 202


def test_approving_a_plan_that_was_replaced_is_409(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    reviewed = ticket.current_plan.plan_sha256
    newer = RunFactory(ticket=ticket, plan_sha256="e" * 64)
    Ticket.objects.filter(pk=ticket.pk).update(current_plan=newer)
    response = api_for(tech_lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["detail"].startswith("the plan changed since you reviewed it")
    bad = api_for(tech_lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": "xyz"}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["detail"].startswith("plan_sha256:")
    ok = api_for(tech_lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": "E" * 64}, format="json"
    )
    assert ok.status_code == 200
    assert Approval.objects.get().plan_sha256 == "e" * 64


def test_an_emergency_ticket_waits_for_its_own_rule(
    author: User, tmp_path: Any, settings: Any
) -> None:
    from deployments import terraform as tf

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"),
        author=author,
        status=TicketStatus.PLANNING,
        change_type="emergency",
    )
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING, plan_sha256="")
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        stale=False,
        terraform_version="1.11.4",
        plan=tf.PlanResult(
            exit_code=0,
            plan_bytes=b"plan",
            plan_sha256="f" * 64,
            summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
        ),
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert ticket.status_reason == "1 approval from a Tech Lead or DevOps Lead"


@pytest.mark.parametrize("body", [{}, {"comment": "ok"}, {"plan_sha256": ""}])
def test_approve_without_naming_the_plan_is_400(
    author: User, tech_lead: User, body: dict[str, str]
) -> None:
    ticket = awaiting("prod", author)
    events = AuditEvent.objects.count()
    response = api_for(tech_lead).post(f"/api/v1/tickets/{ticket.pk}/approve/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("plan_sha256:")
    assert response.json()["plan_sha256"]
    assert not Approval.objects.exists() and AuditEvent.objects.count() == events


def test_approve_with_no_current_plan_is_409(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    reviewed = ticket.current_plan.plan_sha256
    Ticket.objects.filter(pk=ticket.pk).update(current_plan=None)
    response = api_for(tech_lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "there is no successful plan to approve; run a new plan"
    assert not Approval.objects.exists()


def test_the_service_cannot_approve_without_a_plan_digest(author: User, tech_lead: User) -> None:
    """No caller (page, API, command, test) can approve without naming the plan reviewed."""
    ticket = awaiting("prod", author)
    with pytest.raises(TypeError):
        services.approval_grant(ticket_id=ticket.pk, actor=tech_lead)  # type: ignore[call-arg]
    with pytest.raises(services.InputError) as bad:
        services.approval_grant(ticket_id=ticket.pk, actor=tech_lead, plan_sha256="")
    assert bad.value.field == "plan_sha256"
    assert not Approval.objects.exists()


def test_an_approval_landing_after_a_replan_binds_to_nothing(
    author: User, tech_lead: User, infra_repo: Any, monkeypatch: Any
) -> None:
    """The approver reviewed plan A; the author re-plans; the late approve names A: 409."""
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = awaiting("prod", author)
    reviewed = ticket.current_plan.plan_sha256
    assert api_for(author).post(f"/api/v1/tickets/{ticket.pk}/plan/").status_code == 202
    new_plan = TerraformRun.objects.filter(ticket=ticket).latest("id")
    new_plan.status, new_plan.plan_sha256 = RunStatus.SUCCEEDED, "d" * 64
    new_plan.save()
    Ticket.objects.filter(pk=ticket.pk).update(
        status=TicketStatus.AWAITING_APPROVAL, current_plan=new_plan
    )
    late = api_for(tech_lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": reviewed}, format="json"
    )
    assert late.status_code == 409
    assert late.json()["detail"].startswith("the plan changed since you reviewed it")
    assert not Approval.objects.exists()
