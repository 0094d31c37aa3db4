"""Approving, rejecting and deploying: separation of duties and approvals bound to one plan."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import RunStatus, TicketStatus
from deployments.lib import presentation
from deployments.models import Approval, Rejection, TerraformRun, Ticket
from deployments.selectors import check_may_approve_now, user_roles, votes_for
from deployments.selectors.windows import freezes_for
from deployments.services import incidents, notices, replans
from deployments.services._base import InputError, locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.deploy_checks import check_plan_may_apply
from deployments.services.policies import policy_hold
from deployments.services.runs.start import apply_start, environment_release

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
        votes = votes_for(ticket)
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
            who = ", ".join(
                f"{v.approver_name} ({presentation.role_label(r)})" for v, r in state.counted
            )
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
            incidents.rollback_start_on_approval(ticket, actor=actor, now=now)
            replans.schedule_on_approval(ticket, now=now)  # a slot kept across a re-plan
            if policy.auto_deploys(ticket.environment):
                # An auto-deploy ticket that waited for a lead (its commit is not on the
                # protected branch) deploys as its environment's tickets do, by the release
                # (which re-plans first a plan that another apply made stale).
                env_id = ticket.environment_id
                transaction.on_commit(lambda: environment_release(environment_id=env_id))
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
        votes = votes_for(ticket)
        freezes = freezes_for(ticket.environment, now)
        roles = user_roles(actor)
        # An approving lead may start an immediate rollback where the environment says so.
        starter = policy.rollback_starter_roles(ticket, actor.pk, votes, now=now) - roles
        policy.check_may_deploy(
            ticket,
            user_roles=roles | starter,
            now=now,
            pending=policy.quorum(rule, votes).describe_missing(),
            # Short of the rule of now (an immediate rollback past its hour): as the ticket
            # page says. Approvers who lost their role are named by the start check below.
            quorum_met=not policy.needs_more_approval(ticket, votes, now=now),
            freezes=freezes,
        )
        check_plan_may_apply(ticket, now=now, freezes=freezes)
        run = apply_start(ticket, actor=actor)
        assert run is not None  # without wait_if_busy a busy environment raises instead
        if starter and not roles & set(ticket.environment.deploy_groups):
            incidents.rollback_started_by_approver(ticket, run, actor=actor)
        return run


def approval_route(ticket: Ticket, run: TerraformRun) -> None:
    """After a plan (services.lifecycle.after_plan): the ticket awaits the approvals its rule
    needs (its approvers are told), or needs none and is approved, and an environment that
    deploys by itself (dev) starts the apply."""
    env = ticket.environment
    rule = policy.rule_for(ticket, now=timezone.now())
    if rule.required:
        transition(
            ticket,
            TicketStatus.AWAITING_APPROVAL,
            actor="worker",
            reason=policy.branch_note(ticket, settings.INFRA_BRANCH) or rule.describe(),
            data={"run": run.pk},
        )
        notices.approval_needed(ticket)
        return
    transition(
        ticket,
        TicketStatus.APPROVED,
        actor="system",
        reason=f"{env.name} needs no approval",
        data={"plan_run": run.pk},
    )
    if policy.auto_deploys(env) and not policy_hold(ticket):
        apply_start(ticket, actor="system", wait_if_busy=True)
