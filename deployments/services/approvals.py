"""Approving, rejecting and deploying: separation of duties and approvals bound to one plan."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import RunStatus, TicketStatus
from deployments.models import Approval, Rejection, TerraformRun, Ticket
from deployments.selectors import check_may_approve_now, standing_votes, user_roles
from deployments.selectors_windows import freezes_for, plan_is_stale

from . import notices
from ._base import InputError, locked_ticket, transition
from .audit import audit_record
from .runs import apply_start, apply_votes

SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _current_plan(ticket: Ticket) -> TerraformRun | None:
    plan = ticket.current_plan
    if plan is None or plan.status != RunStatus.SUCCEEDED or not plan.plan_sha256:
        return None
    return plan


def approval_grant(*, ticket_id: int, actor: Any, plan_sha256: str, comment: str = "") -> Approval:
    """Approve the plan the approver reviewed; the last required approval makes it approved.

    ``plan_sha256`` is required: an approval names its plan, so one that lands just
    after a re-plan is refused (409), never bound to a plan nobody reviewed.
    """
    reviewed = plan_sha256.strip().lower()
    if not SHA256_RE.fullmatch(reviewed):
        raise InputError(
            "plan_sha256", "plan_sha256 must be the 64-hex SHA-256 of the plan you reviewed"
        )
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        now = timezone.now()
        plan = _current_plan(ticket)
        votes = standing_votes(ticket)
        roles = user_roles(actor)
        role = check_may_approve_now(
            ticket, actor, roles=roles, votes=votes, has_plan=plan is not None, now=now
        )
        assert plan is not None
        if reviewed != plan.plan_sha256:
            raise policy.PolicyError(
                f"the plan changed since you reviewed it: plan run #{plan.pk} "
                f"({plan.plan_sha256[:12]}) replaced plan {reviewed[:12]}; "
                "review the new plan and approve again"
            )
        rule = policy.rule_for(ticket, now=now)
        held = sorted(frozenset(roles) & rule.roles)
        try:
            with transaction.atomic():
                approval = Approval.objects.create(
                    ticket=ticket,
                    approver=actor,
                    role=role,
                    held_roles=held,
                    plan_run=plan,
                    plan_sha256=plan.plan_sha256,
                    comment=comment,
                    # The ticket is awaiting approval: it got there at status_changed_at.
                    waiting_since=ticket.status_changed_at,
                )
        except IntegrityError:
            raise policy.PolicyError("you have already approved this plan") from None
        audit_record(
            actor=actor,
            action="approval.grant",
            ticket=ticket,
            data={
                "approval": approval.pk,
                "role": role,
                "plan_run": plan.pk,
                "plan_sha256": plan.plan_sha256,
                "comment": comment,
            },
        )
        vote = policy.Vote(actor.pk, actor.get_username(), frozenset(held), role)
        state = policy.quorum(rule, [*votes, vote])
        _record_reassignments(ticket, state, actor=actor)
        if state.met:
            who = ", ".join(f"{v.approver_name} ({policy.role_label(r)})" for v, r in state.counted)
            if ticket.status == TicketStatus.AWAITING_APPROVAL:
                transition(
                    ticket,
                    TicketStatus.APPROVED,
                    actor=actor,
                    reason=f"approved by {who}; waiting for a deploy",
                    data={"plan_run": plan.pk, "plan_sha256": plan.plan_sha256},
                )
            # else: approved (or scheduled) already, it lacked an approval the rule of now
            # needs (an immediate rollback past its hour); the approval.grant event says so.
            notices.ticket_approved(ticket, actor=actor, who=who)
        return approval


def _record_reassignments(ticket: Ticket, state: policy.Quorum, *, actor: Any) -> None:
    """A dual-role approver may move to the role only they can fill; record that openly."""
    for vote, role in state.counted:
        if vote.role and vote.role != role:
            Approval.objects.filter(
                ticket=ticket, approver_id=vote.approver_id, voided_at__isnull=True
            ).update(role=role)
            audit_record(
                actor=actor,
                action="approval.reassign",
                ticket=ticket,
                data={"approver": vote.approver_name, "from": vote.role, "to": role},
            )


def ticket_reject(*, ticket_id: int, actor: Any, reason: str) -> Rejection:
    """Refuse the change, with a reason; the ticket ends rejected."""
    reason = reason.strip()
    if not reason:
        raise InputError("reason", "a rejection needs a reason")
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        policy.check_may_reject(
            ticket, user_id=actor.pk, user_roles=user_roles(actor), now=timezone.now()
        )
        rejection = Rejection.objects.create(
            ticket=ticket, rejected_by=actor, reason=reason, plan_run=ticket.current_plan
        )
        transition(
            ticket,
            TicketStatus.REJECTED,
            actor=actor,
            reason=f"rejected by {actor.get_username()}: {reason}",
            data={"rejection": rejection.pk},
        )
        notices.ticket_rejected(ticket, actor=actor, reason=reason)
        return rejection


def ticket_deploy(*, ticket_id: int, actor: Any) -> TerraformRun:
    """Apply exactly the approved plan, now. Double clicks and retries find it applying."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        now = timezone.now()
        rule = policy.rule_for(ticket, now=now)
        votes = standing_votes(ticket)
        state = policy.quorum(rule, votes)
        freezes = freezes_for(ticket.environment, now)
        policy.check_may_deploy(
            ticket,
            user_roles=user_roles(actor),
            now=now,
            pending=state.describe_missing(),
            quorum_met=state.met or not rule.required,
            freezes=freezes,
        )
        plan = _current_plan(ticket)
        if plan is None:
            raise policy.PolicyError("there is no successful plan to apply; run a new plan")
        if plan_is_stale(ticket):
            raise policy.PolicyError(policy.STALE_PLAN_MESSAGE)
        # The same decision the worker takes again when the apply starts.
        votes_now, stray = apply_votes(ticket, plan)
        policy.check_apply_may_start(
            ticket,
            now=now,
            plan_sha256=plan.plan_sha256,
            current_plan_sha256=plan.plan_sha256,
            votes=votes_now,
            stray_approvals=stray,
            freezes=freezes,
        )
        run = apply_start(ticket, actor=actor)
        assert run is not None  # without wait_if_busy a busy environment raises instead
        return run


def approval_summary(ticket: Ticket) -> dict[str, Any]:
    """Who must still approve, who did and under which role: for pages and the API."""
    now = timezone.now()
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, standing_votes(ticket))
    return {
        "rule": rule.describe(),
        "required": rule.required,
        "met": state.met,
        "missing": list(state.missing),
        "missing_text": state.describe_missing(),
        "risk_level": (ticket.risk or {}).get("level", ""),
        # Why more approvals than usual are needed ("" when the usual rule applies).
        "risk_note": policy.risk_rule_note(ticket),
        # An immediate rollback past its hour follows the planned path ("" otherwise).
        "rollback_note": policy.rollback_lapse_note(ticket, now),
    }
