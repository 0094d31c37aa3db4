"""Approving and rejecting a ticket's current plan, and the CI checks approval needs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deployments.choices import TicketStatus
from deployments.lib.presentation import role_label
from deployments.policy.errors import PolicyError
from deployments.policy.kinds import (
    rollback_lapsed,
)
from deployments.policy.rules import (
    Vote,
    assign,
    counting,
    quorum,
    rule_for,
    slot_role,
)

if TYPE_CHECKING:
    from deployments.models import Ticket


def replan_voids_approvals(ticket: Ticket, votes: Sequence[Vote], *, now: dt.datetime) -> bool:
    """Would a new plan void approvals? It does when any stand, or the ticket is approved."""
    if votes:
        return True
    approved = ticket.status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED)
    return approved and rule_for(ticket, now=now).required


_NOT_APPROVABLE = {
    TicketStatus.PLANNING: "the plan is still running; approve it once it has finished",
    TicketStatus.PLAN_FAILED: "the last plan failed; there is no plan to approve",
    TicketStatus.APPROVED: "this ticket is already approved",
    TicketStatus.DRAFT: "the ticket has not been planned yet",
}


def check_may_approve(
    ticket: Ticket,
    *,
    user_id: int,
    username: str,
    user_roles: Iterable[str],
    votes: Sequence[Vote],
    has_current_plan: bool,
    now: dt.datetime,
) -> str:
    """May this person approve the ticket's current plan? Returns the role they count for.

    An approved (or scheduled) ticket whose standing approvals no longer meet the rule that
    applies now (an immediate rollback past its hour) takes the approvals it lacks."""
    env_name = ticket.environment.name
    rule = rule_for(ticket, now=now)
    if not rule.required:
        raise PolicyError(f"{env_name} tickets need no approval")
    if ticket.author_id == user_id:
        raise PolicyError(
            "you authored this ticket; someone else must approve it", PolicyError.ACTOR
        )
    status = TicketStatus(ticket.status)
    if status != TicketStatus.AWAITING_APPROVAL and not needs_more_approval(ticket, votes, now=now):
        raise PolicyError(
            _NOT_APPROVABLE.get(
                status, f"a ticket that is {status.label.lower()} cannot be approved"
            )
        )
    if not has_current_plan:
        raise PolicyError("there is no successful plan to approve; run a new plan")
    if any(v.approver_id == user_id for v in votes):
        raise PolicyError("you have already approved this plan")
    held = frozenset(user_roles) & rule.roles
    if not held:
        raise PolicyError(
            f"{env_name} needs {rule.describe()}; you hold none of those roles", PolicyError.ACTOR
        )
    candidate = Vote(approver_id=user_id, approver_name=username, roles=held)
    placement = assign(rule, [*counting(rule, votes), candidate])
    if placement is None:
        state = quorum(rule, votes)
        blockers = [
            f"{vote.approver_name} already approved as {role_label(role)}"
            for vote, role in state.counted
            if role in held
        ] or [f"{vote.approver_name} already approved" for vote, _ in state.counted]
        needs = state.describe_missing() if state.missing else "no further approval"
        raise PolicyError(f"{env_name} needs {needs}; {', '.join(blockers)}", PolicyError.ACTOR)
    return slot_role(rule, placement[-1], candidate)


def needs_more_approval(ticket: Ticket, votes: Sequence[Vote], *, now: dt.datetime) -> bool:
    """Is an approved or scheduled ticket short of the approvals the rule of ``now`` needs?
    Only a rule that changed under it does that: an immediate rollback past its hour, approved
    by one lead, now needs the environment's normal rule."""
    if ticket.status not in (TicketStatus.APPROVED, TicketStatus.SCHEDULED):
        return False
    if not rollback_lapsed(ticket, now):
        return False
    rule = rule_for(ticket, now=now)
    return rule.required and not quorum(rule, votes).met


def check_may_reject(
    ticket: Ticket, *, user_id: int, user_roles: Iterable[str], now: dt.datetime
) -> None:
    """Those who could approve may reject instead; the author cancels."""
    if ticket.author_id == user_id:
        raise PolicyError(
            "you authored this ticket; cancel it instead of rejecting it", PolicyError.ACTOR
        )
    rule = rule_for(ticket, now=now)
    if not frozenset(user_roles) & rule.roles:
        raise PolicyError(
            f"only an approver of {ticket.environment.name} tickets ({rule.describe()}) "
            "can reject this ticket",
            PolicyError.ACTOR,
        )
    if ticket.status not in (TicketStatus.AWAITING_APPROVAL, TicketStatus.APPROVED):
        raise PolicyError(
            f"a ticket that is {TicketStatus(ticket.status).label.lower()} cannot be rejected"
        )


CHECK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def required_checks_problem(value: Any) -> str | None:
    """Why an environment's required_checks cannot be enforced, or None."""
    if not isinstance(value, list) or any(
        not isinstance(name, str) or not CHECK_NAME_RE.match(name) for name in value
    ):
        return (
            "required_checks must be a list of check names (lowercase letters, digits, "
            '"-" and "_", at most 64 characters), e.g. ["fmt", "validate"]'
        )
    if len(set(value)) != len(value):
        return "required_checks names a check twice"
    return None


def check_required_checks(ticket: Ticket, latest: Mapping[str, str]) -> None:
    """Have the checks the environment requires passed? ``latest`` maps each reported check
    name to the status of its latest report. Refused (409) naming what is missing or failed."""
    required = list(ticket.environment.required_checks or [])
    missing = [name for name in required if name not in latest]
    failed = [name for name in required if latest.get(name) == "failed"]
    if not missing and not failed:
        return
    parts = []
    if failed:
        parts.append(f"failed: {', '.join(failed)}")
    if missing:
        parts.append(f"not reported: {', '.join(missing)}")
    raise PolicyError(
        f"{ticket.environment.name} tickets need the checks {', '.join(required)} to have "
        f"passed before approval ({'; '.join(parts)})"
    )
