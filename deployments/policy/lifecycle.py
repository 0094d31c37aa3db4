"""A ticket's moves: the transition table, re-planning, deploying, the worker's start-time
re-check of an apply, scheduling, and which environments deploy by themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from deployments.choices import ALLOWED_TRANSITIONS, TicketStatus
from deployments.lib.presentation import article, format_in_zone, role_label
from deployments.policy.approvals import replan_voids_approvals
from deployments.policy.errors import ApplyRefused, PolicyError
from deployments.policy.kinds import (
    ignores_window,
    rollback_lapse_note,
)
from deployments.policy.roles import (
    holds_any,
)
from deployments.policy.rules import (
    Vote,
    branch_note,
    needs_branch_approval,
    quorum,
    rule_for,
)
from deployments.policy.windows import (
    STALE_PLAN_MESSAGE,
    Window,
    as_periods,
    check_window,
    describe_next_window,
    frozen_by,
)

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


def check_transition(current: str, target: str) -> None:
    """Refuse any move that is not in ALLOWED_TRANSITIONS."""
    allowed = ALLOWED_TRANSITIONS.get(TicketStatus(current), frozenset())
    if TicketStatus(target) not in allowed:
        raise PolicyError(
            f"a ticket that is {TicketStatus(current).label.lower()} cannot become "
            f"{TicketStatus(target).label.lower()}"
        )


def check_may_plan(
    ticket: Ticket,
    user_id: int,
    user_groups: Iterable[str],
    *,
    votes: Sequence[Vote],
    now: dt.datetime,
    superuser: bool = False,
) -> None:
    """Who may re-plan. A new plan voids the standing approvals, so when there are any only
    the author or a holder of one of the ticket's approver roles may, never a bystander
    (operations could otherwise undo two leads' work with one click)."""
    env = ticket.environment
    groups = set(user_groups)
    approvers = rule_for(ticket, now=now).roles
    if replan_voids_approvals(ticket, votes, now=now):
        if ticket.author_id == user_id or groups & approvers:
            return
        who = ", ".join(v.approver_name for v in votes)
        voided = f"the approvals of {who}" if who else "the ticket's approval"
        raises = " or ".join(role_label(r) for r in sorted(approvers)) or "an approver"
        raise PolicyError(
            f"a new plan would void {voided}; only the author or {article(raises)} can re-plan it",
            PolicyError.ACTOR,
        )
    allowed = set(env.file_groups) | set(approvers)
    if superuser or ticket.author_id == user_id or groups & allowed:
        return
    raise PolicyError(
        f"only the author, an approver or someone who may file {env.name} tickets can re-plan it",
        PolicyError.ACTOR,
    )


def check_deployer(env: Environment, user_roles: Iterable[str], doing: str) -> None:
    """Deploying and scheduling belong to the environment's deploy_groups; the refusal
    names them ("prod deploys are done by Operations")."""
    if not holds_any(user_roles, env.deploy_groups):
        who = " or ".join(role_label(g) for g in env.deploy_groups) or "nobody"
        raise PolicyError(f"{env.name} {doing} {who}", PolicyError.ACTOR)


def check_may_deploy(
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    now: dt.datetime,
    pending: str = "",
    quorum_met: bool = True,
    freezes: Iterable[Any] = (),
) -> None:
    """May this person start the apply now? ``pending`` describes approvals still missing;
    ``quorum_met`` says whether the standing approvals meet the rule that applies now."""
    env = ticket.environment
    check_deployer(env, user_roles, "deploys are done by")
    status = TicketStatus(ticket.status)
    if status == TicketStatus.AWAITING_APPROVAL:
        raise PolicyError(f"the ticket is not approved yet: it still needs {pending or 'approval'}")
    if status not in (TicketStatus.APPROVED, TicketStatus.SCHEDULED):
        raise PolicyError(f"a ticket that is {status.label.lower()} cannot be deployed")
    if not quorum_met:
        why = rollback_lapse_note(ticket, now) or "its approvals no longer meet the rule"
        raise PolicyError(f"{why}; it still needs {pending or 'approval'} before it can deploy")
    check_window(env, ticket, now, freezes)


def check_apply_may_start(
    ticket: Ticket,
    *,
    now: dt.datetime,
    plan_sha256: str,
    current_plan_sha256: str,
    votes: Sequence[Vote],
    stray_approvals: int = 0,
    freezes: Iterable[Any] = (),
    branch: str = "main",
) -> None:
    """May the apply of ``plan_sha256`` start now? Asked when deploy is requested and again
    by the worker at the moment Terraform would start (the window may have closed and
    approvers may have lost their role since, or an auto-deploy ticket's commit may have
    left the protected branch ``branch``: its ``commit_on_branch`` is checked again first).

    ``votes`` are the standing approvals of that plan, each with the rule's roles its
    approver holds *now*; ``stray_approvals`` counts standing approvals of any other plan.
    Raises :class:`ApplyRefused` naming the status the ticket goes back to.
    """
    env = ticket.environment
    if not plan_sha256 or plan_sha256 != current_plan_sha256:
        raise ApplyRefused(
            "the plan to apply is not the ticket's current plan; run a new plan and have it "
            "approved",
            TicketStatus.AWAITING_APPROVAL,
        )
    try:
        check_window(env, ticket, now, freezes)
    except PolicyError as exc:
        raise ApplyRefused(
            f"{exc.message} (checked when the apply would have started, "
            f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC); deploy again inside the window",
            TicketStatus.APPROVED,
        ) from None
    rule = rule_for(ticket, now=now)
    off_branch = needs_branch_approval(ticket)
    if not rule.required or (env.auto_deploy and not off_branch):
        return
    counted = [v for v in votes if v.roles and v.approver_id != ticket.author_id]
    dropped = [v.approver_name for v in votes if v not in counted]
    state = quorum(rule, counted)
    if state.met and not stray_approvals:
        return
    if off_branch and not dropped:
        raise ApplyRefused(
            f"{branch_note(ticket, branch)}; no such approval stands for this plan",
            TicketStatus.AWAITING_APPROVAL,
        )
    if dropped:
        why = (
            f"{', '.join(dropped)} no longer hold{'s' if len(dropped) == 1 else ''} the role "
            "they approved under"
        )
    else:
        why = rollback_lapse_note(ticket, now) or "the standing approvals do not cover this plan"
    raise ApplyRefused(
        f"the approvals no longer hold ({why}); it needs {state.describe_missing()} before "
        "it can be deployed",
        TicketStatus.AWAITING_APPROVAL,
    )


def check_may_schedule(
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    at: dt.datetime,
    now: dt.datetime,
    freezes: Iterable[Any] = (),
    stale: bool = False,
) -> None:
    """May this person schedule the ticket's apply for ``at``? Those who may deploy may
    schedule; only an approved (or already scheduled) ticket with a fresh plan, for an
    instant inside a window and outside every freeze (emergencies: any instant)."""
    env = ticket.environment
    check_deployer(env, user_roles, "deploys are done (and scheduled) by")
    status = TicketStatus(ticket.status)
    if status not in (TicketStatus.APPROVED, TicketStatus.SCHEDULED):
        raise PolicyError(
            f"only an approved ticket can be scheduled; this one is {status.label.lower()}"
        )
    if stale:
        raise PolicyError(STALE_PLAN_MESSAGE)
    if at < now - dt.timedelta(minutes=1):
        raise PolicyError("that time has passed; pick a time in the future or the next window")
    if ignores_window(ticket, at):  # an immediate rollback's hour is asked at its start time
        return
    periods = as_periods(freezes)
    freeze = frozen_by(at, periods)
    zone = env.window_timezone or "UTC"
    if freeze is not None:
        raise PolicyError(
            f"{env.name} is frozen from {format_in_zone(freeze.starts_at, zone)} until "
            f"{format_in_zone(freeze.ends_at, zone)} ({freeze.reason or 'no reason given'}); "
            f"{describe_next_window(env, freeze.ends_at, periods)}"
        )
    window = Window.of(env)
    if window and not window.contains(at):
        raise PolicyError(
            f"{format_in_zone(at, zone)} is outside {env.name}'s change window "
            f"({window.describe()}); {describe_next_window(env, at, periods)}"
        )


def check_may_unschedule(ticket: Ticket, *, user_roles: Iterable[str]) -> None:
    """Those who may deploy may take a scheduled ticket back to approved."""
    env = ticket.environment
    check_deployer(env, user_roles, "schedules are managed by")
    if ticket.status != TicketStatus.SCHEDULED:
        raise PolicyError("the ticket is not scheduled")
