"""Issue 22, incident paths: who starts an immediate rollback (configurable per
environment, audited), and what escalates an emergency (configurable per environment)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments import policy, services
from deployments.choices import RunKind, TicketStatus
from deployments.models import AuditEvent, Environment, TerraformRun, Ticket
from deployments.selectors import available_actions
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db


def prod(**fields: object) -> Environment:
    Environment.objects.filter(name="prod").update(**fields)
    return Environment.objects.get(name="prod")


def immediate_rollback(author: User) -> Ticket:
    return awaiting(
        "prod",
        author,
        title="Roll back #7",
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=timezone.now() + dt.timedelta(minutes=40),
    )


def approve(ticket: Ticket, lead: User) -> None:
    plan = ticket.current_plan
    assert plan is not None
    services.approval_grant(ticket_id=ticket.pk, actor=lead, plan_sha256=plan.plan_sha256)


def applies(ticket: Ticket) -> int:
    return TerraformRun.objects.filter(ticket=ticket, kind=RunKind.APPLY).count()


# --- immediate rollbacks ----------------------------------------------------------------


def test_by_default_only_operations_start_an_immediate_rollback(
    author: User, tech_lead: User, operations: User
) -> None:
    ticket = immediate_rollback(author)
    approve(ticket, tech_lead)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and applies(ticket) == 0
    with pytest.raises(policy.PolicyError, match="Operations"):
        services.ticket_deploy(ticket_id=ticket.pk, actor=tech_lead)
    assert "deploy" not in available_actions(ticket, tech_lead, timezone.now())
    services.ticket_deploy(ticket_id=ticket.pk, actor=operations)
    assert applies(ticket) == 1


def test_the_approving_lead_starts_it_where_the_environment_says_so(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    prod(immediate_rollback_start="approver")
    ticket = immediate_rollback(author)
    approve(ticket, tech_lead)
    ticket.refresh_from_db()
    # Only the lead who approved it, not another lead.
    assert "deploy" not in available_actions(ticket, devops_lead, timezone.now())
    with pytest.raises(policy.PolicyError):
        services.ticket_deploy(ticket_id=ticket.pk, actor=devops_lead)
    assert "deploy" in available_actions(ticket, tech_lead, timezone.now())
    run = services.ticket_deploy(ticket_id=ticket.pk, actor=tech_lead)
    event = AuditEvent.objects.get(ticket=ticket, action="rollback.start_by_approver")
    assert event.actor == tech_lead and event.data["run"] == run.pk
    assert "approver" in event.data["reason"]


def test_the_lead_may_not_start_a_normal_ticket_or_a_rollback_past_its_hour(
    author: User, tech_lead: User
) -> None:
    prod(immediate_rollback_start="approver")
    ticket = immediate_rollback(author)
    approve(ticket, tech_lead)
    Ticket.objects.filter(pk=ticket.pk).update(
        rollback_immediate_until=timezone.now() - dt.timedelta(seconds=1)
    )
    with pytest.raises(policy.PolicyError):
        services.ticket_deploy(ticket_id=ticket.pk, actor=tech_lead)
    assert applies(ticket) == 0


def test_it_starts_on_approval_where_the_environment_says_so(author: User, tech_lead: User) -> None:
    prod(immediate_rollback_start="on_approval")
    ticket = immediate_rollback(author)
    approve(ticket, tech_lead)
    assert applies(ticket) == 1
    event = AuditEvent.objects.get(ticket=ticket, action="rollback.start_on_approval")
    assert "on_approval" in event.data["reason"]


def test_a_normal_ticket_never_starts_on_approval(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    prod(immediate_rollback_start="on_approval", requires_staging_evidence=False)
    ticket = awaiting("prod", author)
    approve(ticket, tech_lead)
    approve(ticket, devops_lead)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and applies(ticket) == 0


# --- emergencies --------------------------------------------------------------------------

OUTAGE = {
    "impact": "high",
    "likelihood": "medium",
    "summary": "restore the load balancer",
    "customer_facing": True,
    "tested_in_staging": False,
}


def emergency(answers: dict[str, object], **risk: object) -> Ticket:
    author = User.objects.get_or_create(username="emma")[0]
    return awaiting(
        "prod",
        author,
        change_type="emergency",
        risk_assessment=answers,
        risk={"level": "high", **risk},
    )


def test_a_customer_facing_untested_outage_fix_keeps_the_single_approval() -> None:
    ticket = emergency(OUTAGE)
    rule = policy.rule_for(ticket, now=timezone.now())
    assert rule.count == 1 and not rule.all_of  # the environment's emergency rule
    assert policy.risk_rule_note(ticket) == ""


def test_a_data_migration_escalates_an_emergency_and_says_why() -> None:
    ticket = emergency({**OUTAGE, "data_migration": True})
    rule = policy.rule_for(ticket, now=timezone.now())
    assert set(rule.all_of) == {"tech_lead", "devops_lead"}
    note = policy.risk_rule_note(ticket)
    assert "because it migrates data" in note
    assert "prod escalates an emergency when it migrates data or the plan deletes" in note


def test_a_plan_destroying_data_escalates_an_emergency() -> None:
    blast = {"deletes": [{"address": "aws_db_instance.main", "data_reason": "a database"}]}
    ticket = emergency(OUTAGE, blast_radius=blast)
    assert set(policy.rule_for(ticket, now=timezone.now()).all_of) == {
        "tech_lead",
        "devops_lead",
    }


def test_what_escalates_is_configured_per_environment() -> None:
    prod(emergency_escalating_answers=["customer_facing"])
    ticket = emergency(OUTAGE)
    assert set(policy.rule_for(ticket, now=timezone.now()).all_of) == {
        "tech_lead",
        "devops_lead",
    }
    prod(emergency_escalating_answers=[])
    ticket = emergency({**OUTAGE, "data_migration": True})
    assert policy.rule_for(ticket, now=timezone.now()).count == 1


def test_the_escalating_answers_are_validated() -> None:
    from deployments.policy.incidents import escalating_answers_problem

    assert escalating_answers_problem(["data_migration"]) == ""
    assert "unknown answers" in escalating_answers_problem(["outage"])
    assert escalating_answers_problem("data_migration") != ""


def test_the_emergency_email_states_the_rule_that_applies(
    tech_lead: User, devops_lead: User
) -> None:
    from deployments.services import notices
    from notifications.models import Notification

    plain = emergency(OUTAGE)
    notices.emergency_filed(plain)
    body = Notification.objects.filter(event="emergency.filed", ticket=plain).first().body  # type: ignore[union-attr]
    assert "it needs 1 approval from a Tech Lead or DevOps Lead and may deploy" in body
    assert "Prod escalates an emergency to" in body and "when it migrates data" in body
    escalated = emergency({**OUTAGE, "data_migration": True})
    notices.emergency_filed(escalated)
    body = Notification.objects.filter(event="emergency.filed", ticket=escalated).first().body  # type: ignore[union-attr]
    assert "it needs Tech Lead and DevOps Lead, two different people" in body
    assert "because it migrates data" in body
