"""Approvals as the rules count them: one way to build the votes (votes_for) for the ticket
page, the API, the home queue, the services and the worker's start-time re-check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from deployments import policy
from deployments.models import (
    Approval,
    TerraformRun,
    Ticket,
)
from deployments.selectors.access import (
    user_roles,
)


def ticket_approvals(ticket: Ticket) -> list[Approval]:
    """All the ticket's approvals (voided too) with approver and plan run, oldest first:
    those ticket_get loaded with the ticket, or one query. Pages and the API detail read
    them several times per request (votes, summary, the list itself)."""
    if "approvals" in getattr(ticket, "_prefetched_objects_cache", {}):
        return list(ticket.approvals.all())
    return list(
        Approval.objects.filter(ticket=ticket)
        .select_related("approver", "plan_run")
        .prefetch_related("approver__groups")
        .order_by("created_at", "id")
    )


def _standing(ticket: Ticket) -> list[Approval]:
    """The approvals not voided by a newer plan, oldest first (what the home queue
    prefetched as ``standing_approvals``, or ticket_approvals)."""
    prefetched = getattr(ticket, "standing_approvals", None)
    if prefetched is not None:
        return list(prefetched)
    return [a for a in ticket_approvals(ticket) if a.voided_at is None]


def attach_approver_roles(approvals: Iterable[Approval]) -> None:
    """Read the current roles of these approvals' approvers in one query (none when there
    are none), for lists that build the votes of many tickets (the home queue)."""
    approvers = [a.approver for a in approvals]
    if not approvers:
        return
    held: dict[int, set[str]] = {user.pk: set() for user in approvers}
    memberships = User.groups.through.objects.filter(user_id__in=sorted(held))
    for user_id, name in memberships.values_list("user_id", "group__name"):
        held[user_id].add(name)
    for user in approvers:
        user._portal_roles = frozenset(held[user.pk])  # type: ignore[attr-defined]


def _roles_now(user: Any) -> frozenset[str]:
    """The approver's roles now: from groups prefetched with the approvals, else one query
    (user_roles caches it on the user object)."""
    if "groups" in getattr(user, "_prefetched_objects_cache", {}):
        return frozenset(group.name for group in user.groups.all())
    return user_roles(user)


def votes_for(ticket: Ticket, plan_run: TerraformRun | None = None) -> list[policy.Vote]:
    """The ticket's standing approvals as the rules count them, oldest first: each with the
    rule's roles its approver held when approving *and still holds* (a lead removed from the
    group since, or deactivated, counts for nothing: policy.counting). With ``plan_run``,
    only the approvals of that plan (its run and its SHA-256).

    The one way votes are built: the ticket page, the API, the home queue, the services and
    the worker's start-time re-check all ask this."""
    votes = []
    for approval in _standing(ticket):
        if plan_run is not None and (
            approval.plan_run_id != plan_run.pk or approval.plan_sha256 != plan_run.plan_sha256
        ):
            continue
        approver = approval.approver
        held = frozenset(approval.held_roles) & _roles_now(approver)
        votes.append(
            policy.Vote(
                approver_id=approver.pk,
                approver_name=approver.get_username(),
                roles=held if approver.is_active else frozenset(),
                role=approval.role,
            )
        )
    return votes


def stray_approvals(ticket: Ticket, plan_run: TerraformRun) -> int:
    """How many standing approvals name another plan than ``plan_run`` (none should: a new
    plan voids them; policy.check_apply_may_start refuses the apply if one does)."""
    return sum(
        1
        for approval in _standing(ticket)
        if approval.plan_run_id != plan_run.pk or approval.plan_sha256 != plan_run.plan_sha256
    )


def approval_summary(
    ticket: Ticket, now: dt.datetime, votes: list[policy.Vote] | None = None
) -> dict[str, Any]:
    """Who must still approve, who did and under which role: for pages and the API."""
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, votes_for(ticket) if votes is None else votes)
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
        # Why an auto-deploy ticket waits for a lead: its commit is not on the protected
        # branch ("commit abc123 is not on main: dev applies it only with a lead's approval").
        "branch_note": policy.branch_note(ticket, settings.INFRA_BRANCH),
    }
