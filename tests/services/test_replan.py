"""Re-planning voids standing approvals: only the author or an approver may do it, and
they say why (kept on the voided approvals, in the audit trail and on the page)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import policy, services
from deployments.choices import RunKind, TicketStatus
from deployments.models import Approval, AuditEvent, Environment, TerraformRun, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

NOW = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: Any) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)


def ticket_in(env: str, author: User, *approvers: User, status: str = "") -> Ticket:
    """A ticket with a successful plan and a standing approval from each of ``approvers``."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env),
        author=author,
        status=status or TicketStatus.AWAITING_APPROVAL,
    )
    plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"p%d" % ticket.pk).hexdigest())
    ticket.current_plan = plan
    ticket.save()
    for approver in approvers:
        role = sorted(approver.groups.values_list("name", flat=True))[0]
        Approval.objects.create(
            ticket=ticket,
            approver=approver,
            role=role,
            held_roles=[role],
            plan_run=plan,
            plan_sha256=plan.plan_sha256,
        )
    return ticket


def replan(user: User, ticket: Ticket, reason: str | None = None) -> Any:
    body = {} if reason is None else {"reason": reason}
    return api_for(user).post(f"/api/v1/tickets/{ticket.pk}/plan/", body, format="json")


def standing(ticket: Ticket) -> int:
    return Approval.objects.filter(ticket=ticket, voided_at__isnull=True).count()


def test_operations_cannot_void_two_leads_approvals(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    events = AuditEvent.objects.count()
    response = replan(operations, ticket, "looks stale to me")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "a new plan would void the approvals of tess, otto; only the author or "
        "a DevOps Lead or Tech Lead can re-plan it"
    }
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and standing(ticket) == 2
    assert TerraformRun.objects.filter(ticket=ticket).count() == 1  # no new plan
    # Nothing written but the refusal itself (who, what, why: access.refused).
    assert AuditEvent.objects.count() == events + 1
    refusal = AuditEvent.objects.latest("id")
    assert refusal.action == "access.refused" and refusal.actor == operations
    assert refusal.data["path"] == f"/api/v1/tickets/{ticket.pk}/plan/"
    assert refusal.data["reason"].startswith("a new plan would void the approvals")


def test_someone_who_may_file_but_not_approve_cannot_void_an_approval(
    author: User, developer: User, lead: User
) -> None:
    ticket = ticket_in("staging", author, lead, status=TicketStatus.APPROVED)
    response = replan(developer, ticket, "rebase")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("a new plan would void the approvals of lena")
    assert standing(ticket) == 1


def test_a_single_standing_approval_is_protected_too(
    author: User, tech_lead: User, operations: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead)  # awaiting the second approval
    assert replan(operations, ticket, "again").status_code == 403
    assert standing(ticket) == 1


def test_the_author_replans_with_a_reason_that_is_recorded(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    response = replan(author, ticket, "  the AMI was rebuilt  ")
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PLANNING and ticket.current_plan is None
    reasons = set(Approval.objects.filter(ticket=ticket).values_list("void_reason", flat=True))
    assert reasons == {
        f"plan run {run_id} replaced the approved plan (re-planned by alice): the AMI was rebuilt"
    }
    assert standing(ticket) == 0
    void = AuditEvent.objects.get(ticket=ticket, action="approval.void")
    assert void.actor_name == "alice"
    assert void.data["reason"].endswith(": the AMI was rebuilt")
    assert sorted(void.data["approvers"]) == ["otto", "tess"]
    moved = AuditEvent.objects.filter(ticket=ticket, action="ticket.transition").last()
    assert moved is not None and moved.data["to"] == "planning"
    assert moved.data["reason"] == "the AMI was rebuilt"


@pytest.mark.parametrize("who", ["tech_lead", "devops_lead"])
def test_a_holder_of_an_approver_role_may_replan(
    request: pytest.FixtureRequest, author: User, tech_lead: User, devops_lead: User, who: str
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    response = replan(request.getfixturevalue(who), ticket, "provider bump")
    assert response.status_code == 202, response.json()
    assert standing(ticket) == 0


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_voiding_without_a_reason_is_400_naming_reason(
    author: User, tech_lead: User, devops_lead: User, reason: str | None
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    events = AuditEvent.objects.count()
    response = replan(author, ticket, reason)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("reason:") and body["reason"]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and standing(ticket) == 2
    assert AuditEvent.objects.count() == events


def test_an_overlong_reason_is_400(author: User, tech_lead: User) -> None:
    ticket = ticket_in("prod", author, tech_lead)
    response = replan(author, ticket, "x" * 201)
    assert response.status_code == 400 and "reason" in response.json()
    assert standing(ticket) == 1


def test_a_scheduled_ticket_counts_as_approved(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.SCHEDULED)
    assert replan(operations, ticket, "x").status_code == 403
    assert replan(author, ticket).status_code == 400


def test_with_nothing_to_void_the_old_rule_holds(
    author: User, operations: User, developer: User
) -> None:
    """No approvals stand: whoever may file in the environment may re-plan, no reason needed."""
    ticket = ticket_in("prod", author)
    response = replan(operations, ticket)
    assert response.status_code == 202, response.json()
    dev = ticket_in("dev", author, status=TicketStatus.APPROVED)  # dev needs no approval
    assert replan(developer, dev).status_code == 202
    assert TerraformRun.objects.filter(kind=RunKind.PLAN, ticket=dev).count() == 2


# --- the rule itself, without a database ---------------------------------------------


def _ticket(status: str, *, env: str = "prod") -> Ticket:
    rules = {
        "prod": {"all_of": ["tech_lead", "devops_lead"]},
        "staging": {"any_of": ["lead_developer", "tech_lead"], "count": 1},
        "dev": {},
    }
    environment = Environment(
        name=env,
        approval_rule=rules[env],
        emergency_approval_rule={},
        file_groups=["developer", "lead_developer", "tech_lead", "devops_lead", "operations"],
    )
    return Ticket(environment=environment, author_id=1, status=status)


VOTE = policy.Vote(approver_id=7, approver_name="tess", roles=frozenset({"tech_lead"}))


@pytest.mark.parametrize(
    ("status", "votes", "voids"),
    [
        (TicketStatus.AWAITING_APPROVAL, (), False),
        (TicketStatus.AWAITING_APPROVAL, (VOTE,), True),
        (TicketStatus.APPROVED, (), True),
        (TicketStatus.SCHEDULED, (), True),
        (TicketStatus.PLAN_FAILED, (), False),
        (TicketStatus.APPLY_FAILED, (), False),
    ],
)
def test_replan_voids_approvals(status: str, votes: tuple[policy.Vote, ...], voids: bool) -> None:
    assert policy.replan_voids_approvals(_ticket(status), votes, now=NOW) is voids


def test_an_approved_dev_ticket_has_nothing_to_void() -> None:
    assert not policy.replan_voids_approvals(_ticket(TicketStatus.APPROVED, env="dev"), (), now=NOW)


@pytest.mark.parametrize(
    ("user_id", "roles", "superuser", "allowed"),
    [
        (1, set(), False, True),  # the author
        (2, {"tech_lead"}, False, True),
        (2, {"devops_lead"}, False, True),
        (2, {"operations"}, False, False),
        (2, {"developer", "lead_developer"}, False, False),
        (2, set(), True, False),  # administration is not an approver
    ],
)
def test_who_may_void(user_id: int, roles: set[str], superuser: bool, allowed: bool) -> None:
    ticket = _ticket(TicketStatus.AWAITING_APPROVAL)
    call = lambda: policy.check_may_plan(  # noqa: E731
        ticket, user_id, roles, votes=[VOTE], now=NOW, superuser=superuser
    )
    if allowed:
        call()
    else:
        with pytest.raises(policy.PolicyError) as refused:
            call()
        assert refused.value.kind == policy.PolicyError.ACTOR
        assert "would void the approvals of tess" in refused.value.message


# --- the page -------------------------------------------------------------------------


def page_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_asks_for_a_reason_when_approvals_stand(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead)
    html = page_for(author).get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="plan-form"' in html and 'name="reason"' in html.split('id="plan-form"')[1][:600]
    fresh = ticket_in("prod", author)
    html = page_for(author).get(f"/tickets/{fresh.pk}/").content.decode()
    assert 'id="plan-form"' in html
    assert 'name="reason"' not in html.split('id="plan-form"')[1].split("</form>")[0]


def test_the_page_tells_a_bystander_why_not(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    html = page_for(operations).get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="plan-form"' not in html
    assert "a new plan would void the approvals of" in html


def test_the_page_refuses_without_a_reason_and_records_one(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = ticket_in("prod", author, tech_lead, devops_lead, status=TicketStatus.APPROVED)
    client = page_for(author)
    refused = client.post(f"/tickets/{ticket.pk}/plan/", {}, follow=True)
    assert "give a reason for re-planning" in refused.content.decode()
    assert standing(ticket) == 2
    done = client.post(f"/tickets/{ticket.pk}/plan/", {"reason": "rebased"}, follow=True)
    assert standing(ticket) == 0
    assert "(re-planned by alice): rebased" in done.content.decode()  # shown on the voided ones
