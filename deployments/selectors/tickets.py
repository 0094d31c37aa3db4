"""Tickets: lists, the actions a viewer may take, schedule conflicts, and the one view model
of a ticket that its page and its API detail both read (ticket_view)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from deployments import policy
from deployments.choices import (
    ACTIVE_RUN_STATUSES,
    ALLOWED_TRANSITIONS,
    REPLANNABLE_STATUSES,
    RunStatus,
    TicketStatus,
)
from deployments.lib import presentation
from deployments.models import (
    Approval,
    AuditEvent,
    CheckResult,
    Deployment,
    FollowUp,
    PullRequest,
    Rejection,
    TerraformRun,
    Ticket,
)
from deployments.selectors.access import (
    is_superuser,
    tickets_visible_to,
    user_roles,
    visible_ticket_ids,
)
from deployments.selectors.approvals import approval_summary, ticket_approvals, votes_for
from deployments.selectors.audit import audit_for_ticket
from deployments.selectors.checks import group_checks, latest_check_statuses
from deployments.selectors.evidence import EvidenceSection, check_promotion
from deployments.selectors.followups import follow_ups_of
from deployments.selectors.monitoring import Monitoring, monitoring_for
from deployments.selectors.policies import PolicyPanel, check_plan_policies_of, policy_panel
from deployments.selectors.review import (
    Approver,
    CommitReview,
    PlanReview,
    approvers_needed,
    commit_review,
    plan_review,
)
from deployments.selectors.rollbacks import (
    KnownGood,
    RollbackChoice,
    known_good_for,
    rollback_choice,
    ticket_last_known_good,
)
from deployments.selectors.runs import LogPage, run_log_page
from deployments.selectors.stacks import TriggeredBy, triggered_by_of
from deployments.selectors.timeline import TimelineStep, ticket_timeline
from deployments.selectors.windows import conflict_for, freezes_for, plan_is_stale


def ticket_list(
    user: Any,
    *,
    environment: str = "",
    status: str = "",
    author: str = "",
    commit: str = "",
    stack: str = "",
) -> QuerySet[Ticket]:
    """Tickets the user may see, filtered; ``commit`` is a full SHA or a prefix (lower case)."""
    tickets = tickets_visible_to(user)
    if stack:
        tickets = tickets.filter(stack__name=stack)
    if environment:
        tickets = tickets.filter(environment__name=environment)
    if status:
        tickets = tickets.filter(status=status)
    if author:
        tickets = tickets.filter(author__username=author)
    if commit:
        tickets = tickets.filter(commit_sha__startswith=commit)
    return tickets


# Offsets beyond this read ids first (rows_at).
DEEP_OFFSET = 1000


def rows_at(queryset: QuerySet[Any], offset: int, size: int) -> list[Any]:
    """``queryset[offset:offset + size]``; a deep offset steps over the skipped rows reading
    ids only (an index scan: the list indexes cover the visibility filter), then loads the
    page's rows with their joins by id."""
    if offset <= DEEP_OFFSET:
        return list(queryset[offset : offset + size])
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + size])
    rows = {row.pk: row for row in queryset.filter(pk__in=ids)}
    return [rows[pk] for pk in ids if pk in rows]


@dataclass(frozen=True)
class Permission:
    """Whether the user may take an action now, and if not, the sentence that says why."""

    allowed: bool
    reason: str = ""
    relevant: bool = True  # worth showing at all in this ticket state
    # The times the reason names (presentation.noting_times): written in the environment's
    # zone, shown in the reader's (templatetags portal_time ``reason``).
    noted: tuple[tuple[str, dt.datetime], ...] = ()


def _check(call: Any) -> Permission:
    with presentation.noting_times() as noted:
        try:
            call()
        except policy.PolicyError as exc:
            return Permission(False, exc.message, noted=tuple(noted))
    return Permission(True)


def check_may_approve_now(
    ticket: Ticket,
    user: Any,
    *,
    roles: frozenset[str],
    votes: list[policy.Vote],
    has_plan: bool,
    now: dt.datetime,
) -> str:
    """Every rule an approval meets, in order: the approver's own rules, then the
    promotion gate and the required CI checks. Returns the role the approver counts for;
    approval_grant and the ticket page both ask this."""
    role = policy.check_may_approve(
        ticket,
        user_id=user.pk,
        username=user.get_username(),
        user_roles=roles,
        votes=votes,
        has_current_plan=has_plan,
        now=now,
    )
    check_promotion(ticket)
    policy.check_required_checks(ticket, latest_check_statuses(ticket))
    check_plan_policies_of(ticket)  # Rego policies: a hard failure, a soft one not overridden
    return role


def ticket_actions(
    ticket: Ticket, user: Any, now: dt.datetime, *, votes: list[policy.Vote] | None = None
) -> dict[str, Permission]:
    """What the ticket page offers this user: each action with its refusal, if any."""
    roles = user_roles(user)
    superuser = is_superuser(user)
    votes = votes_for(ticket) if votes is None else votes
    plan = ticket.current_plan
    has_plan = bool(plan and plan.status == RunStatus.SUCCEEDED and plan.plan_sha256)
    if "runs" in getattr(ticket, "_prefetched_objects_cache", {}):
        # ticket_get loaded the runs already: no second look.
        busy = any(run.status in (RunStatus.QUEUED, RunStatus.RUNNING) for run in ticket.runs.all())
    else:
        busy = ticket.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()
    status = TicketStatus(ticket.status)
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, votes)
    pending = state.describe_missing()
    reopened = policy.needs_more_approval(ticket, votes, now=now)
    actions = {
        "approve": _check(
            lambda: check_may_approve_now(
                ticket, user, roles=roles, votes=votes, has_plan=has_plan, now=now
            )
        ),
        "reject": _check(
            lambda: policy.check_may_reject(ticket, user_id=user.pk, user_roles=roles, now=now)
        ),
        "deploy": _check(
            lambda: policy.check_may_deploy(
                ticket,
                user_roles=roles | policy.rollback_starter_roles(ticket, user.pk, votes, now=now),
                now=now,
                pending=pending,
                quorum_met=not reopened,
                freezes=freezes_for(ticket.environment, now),
            )
        ),
        "plan": _check(
            lambda: policy.check_may_plan(
                ticket, user.pk, roles, votes=votes, now=now, superuser=superuser
            )
        ),
        "cancel": _check(
            lambda: policy.check_may_cancel(ticket, user.pk, roles, superuser=superuser)
        ),
    }
    if actions["deploy"].allowed:  # Rego policies: a hard failure, a soft one not overridden
        actions["deploy"] = _check(lambda: check_plan_policies_of(ticket))
    # Shown on every deployed ticket (the monitoring banner links to it); the reason says
    # who may open one when this person may not.
    rollback_relevant = status in policy.ROLLBACK_FROM_STATUSES and ticket.change_type != "rollback"
    if rollback_relevant:
        choice = rollback_choice(ticket)
        actions["rollback"] = _check(
            lambda: policy.check_may_roll_back(
                ticket, choice.facts, user_roles=roles, superuser=superuser
            )
        )
    else:
        actions["rollback"] = Permission(False)
    relevance = {
        "approve": (status == TicketStatus.AWAITING_APPROVAL or reopened) and rule.required,
        "reject": status in (TicketStatus.AWAITING_APPROVAL, TicketStatus.APPROVED)
        and rule.required,
        "deploy": status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED),
        "plan": status in REPLANNABLE_STATUSES and status != TicketStatus.DRAFT and not busy,
        "cancel": TicketStatus.CANCELLED in ALLOWED_TRANSITIONS[status],
        "rollback": rollback_relevant,
    }
    return {
        name: Permission(p.allowed and relevance[name], p.reason, relevance[name], p.noted)
        for name, p in actions.items()
    }


def available_actions(ticket: Ticket, user: Any, now: dt.datetime) -> list[str]:
    """The actions this user may take on the ticket now (the API's ``available_actions``;
    the page shows the same ones from ticket_actions)."""
    return [name for name, p in ticket_actions(ticket, user, now).items() if p.allowed]


@dataclass(frozen=True)
class ConflictView:
    """A schedule conflict as one viewer sees it: the tickets sharing the window that they
    may see, in run order, and how many others (ids and titles withheld) run with them."""

    environment: str
    opens: dt.datetime | None
    closes: dt.datetime | None
    position: int  # this ticket's place in the run order (1 = first)
    size: int  # every ticket in the window, seen or not
    tickets: tuple[Ticket, ...]
    hidden: int


def conflict_seen_by(user: Any, ticket: Ticket) -> ConflictView | None:
    """The conflict this scheduled ticket is part of, through the viewer's visibility."""
    conflict = conflict_for(ticket)
    if conflict is None:
        return None
    shown = visible_ticket_ids(user, [t.pk for t in conflict.tickets]) | {ticket.pk}
    tickets = tuple(t for t in conflict.tickets if t.pk in shown)
    return ConflictView(
        environment=conflict.environment,
        opens=conflict.opens,
        closes=conflict.closes,
        position=conflict.position(ticket),
        size=len(conflict.tickets),
        tickets=tickets,
        hidden=len(conflict.tickets) - len(tickets),
    )


# --- the one view model of a ticket ---------------------------------------------------


class TicketView:
    """One ticket as one viewer sees it at ``now``: everything its page and its API detail
    show, each part read once (on first use) whichever of the two asks. Other tickets it
    names (the rolled-back ticket, a rollback's target, the staging ticket, the last known
    good) go through the viewer's visibility: a hidden one is never named."""

    def __init__(self, ticket: Ticket, user: Any, now: dt.datetime) -> None:
        self.ticket = ticket
        self.user = user
        self.now = now
        self.roles = user_roles(user)
        self.superuser = is_superuser(user)

    @functools.cached_property
    def triggered_by(self) -> TriggeredBy | None:
        """The upstream stack's deployment that filed this ticket (issue 21)."""
        return triggered_by_of(self.ticket, self.user)

    # --- runs and the plan

    @functools.cached_property
    def runs(self) -> list[TerraformRun]:
        """Newest first (ticket_get loaded them, each with its log's last page only)."""
        return list(self.ticket.runs.all())

    @functools.cached_property
    def live_run(self) -> TerraformRun | None:
        return next((r for r in self.runs if r.status in ACTIVE_RUN_STATUSES), None)

    @property
    def shown_run(self) -> TerraformRun | None:
        """The run whose log the page shows: the live one, else the latest."""
        return self.live_run or (self.runs[0] if self.runs else None)

    @functools.cached_property
    def shown_page(self) -> LogPage | None:
        """The end of the shown run's log (each run's log is up to RUN_LOG_MAX_BYTES)."""
        run = self.shown_run
        return run_log_page(run) if run else None

    @property
    def shown_log(self) -> str:
        page = self.shown_page
        return page.text if page else ""

    @property
    def plan(self) -> TerraformRun | None:
        return self.ticket.current_plan

    @functools.cached_property
    def plan_stale(self) -> bool:
        """Another apply changed the environment since this plan (a re-plan is needed)."""
        return plan_is_stale(self.ticket)

    # --- approvals and what the viewer may do

    @functools.cached_property
    def policies(self) -> PolicyPanel:
        """The current plan's Rego policy results, overrides and who may give them."""
        return policy_panel(self.ticket, self.user, self.roles)

    @functools.cached_property
    def votes(self) -> list[policy.Vote]:
        return votes_for(self.ticket)

    @functools.cached_property
    def approvals(self) -> list[Approval]:
        """Every approval, voided ones too, oldest first."""
        return ticket_approvals(self.ticket)

    @functools.cached_property
    def approval_status(self) -> dict[str, Any]:
        return approval_summary(self.ticket, self.now, self.votes)

    @functools.cached_property
    def rejections(self) -> list[Rejection]:
        return list(self.ticket.rejections.select_related("rejected_by"))

    @functools.cached_property
    def actions(self) -> dict[str, Permission]:
        return ticket_actions(self.ticket, self.user, self.now, votes=self.votes)

    @property
    def available_actions(self) -> list[str]:
        return [name for name, p in self.actions.items() if p.allowed]

    @functools.cached_property
    def replan_voids(self) -> bool:
        """A re-plan would void approvals: the page asks why (recorded on them)."""
        return policy.replan_voids_approvals(self.ticket, self.votes, now=self.now)

    # --- other tickets it names, through the viewer's visibility

    @functools.cached_property
    def rollback_of_id(self) -> int | None:
        """The ticket a rollback rolls back (None when the viewer may not see it)."""
        pk = self.ticket.rollback_of_id
        return pk if pk is not None and pk in self._visible([pk]) else None

    @property
    def rollback_target(self) -> Deployment | None:
        """A rollback's target deployment."""
        return self.ticket.rollback_target

    @functools.cached_property
    def rollback_target_ticket_id(self) -> int | None:
        """The ticket that made the target deployment (None when hidden from the viewer)."""
        target = self.rollback_target
        if target is None or target.ticket_id not in self._visible([target.ticket_id]):
            return None
        return target.ticket_id

    @functools.cached_property
    def shown_ticket_ids(self) -> set[int]:
        """Of the tickets the rollback section names, those the viewer may see."""
        target = self.rollback_target
        return self._visible(
            [self.ticket.rollback_of_id, target.ticket_id if target is not None else None]
        )

    def _visible(self, ids: list[int | None]) -> set[int]:
        return visible_ticket_ids(self.user, ids)

    @functools.cached_property
    def rollback_choice(self) -> RollbackChoice | None:
        """What a rollback of this ticket would do (only where rolling back is relevant)."""
        return rollback_choice(self.ticket) if self.actions["rollback"].relevant else None

    @functools.cached_property
    def rollback_good(self) -> KnownGood | None:
        choice = self.rollback_choice
        if choice is None:
            return None
        return known_good_for(self.user, choice.target, self.ticket.environment)

    @functools.cached_property
    def last_known_good(self) -> KnownGood | None:
        """What this ticket's rollback would return to, as the viewer may see it."""
        return known_good_for(
            self.user, ticket_last_known_good(self.ticket), self.ticket.environment
        )

    @property
    def rollback_mode_now(self) -> str:
        return policy.effective_rollback_mode(self.ticket, self.now)

    # --- schedule

    @functools.cached_property
    def schedule_conflict(self) -> ConflictView | None:
        return conflict_seen_by(self.user, self.ticket)

    @functools.cached_property
    def schedule(self) -> dict[str, Any]:
        """What the schedule section shows this viewer."""
        ticket, env = self.ticket, self.ticket.environment
        freezes = freezes_for(env, self.now)
        may_deploy = bool(set(self.roles) & set(env.deploy_groups))
        status = TicketStatus(ticket.status)
        window = policy.Window.of(env)
        frozen = (
            policy.frozen_by(ticket.scheduled_for, freezes)
            if status == TicketStatus.SCHEDULED
            and ticket.scheduled_for is not None
            and not policy.ignores_window(ticket, ticket.scheduled_for)
            else None
        )
        return {
            "frozen_at_schedule": frozen,
            "zone": env.window_timezone or "UTC",
            "window": window,
            "stale": self.plan_stale,
            "conflict": self.schedule_conflict,
            "next_window": policy.next_window(env, self.now, freezes) if window else None,
            "can_schedule": may_deploy and status == TicketStatus.APPROVED,
            "can_reschedule": may_deploy and status == TicketStatus.SCHEDULED,
            "relevant": status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED),
            "freezes": freezes,
        }

    # --- the capabilities' sections

    @functools.cached_property
    def monitoring(self) -> Monitoring:
        return monitoring_for(self.ticket, self.now)

    @property
    def monitoring_is_ops(self) -> bool:
        return self.superuser or policy.OPERATIONS_ROLE in self.roles

    @property
    def monitoring_may_sign(self) -> bool:
        return self.monitoring_is_ops and self.ticket.status == TicketStatus.MONITORING

    @property
    def monitoring_may_acknowledge(self) -> bool:
        return (
            self.monitoring_may_sign
            and self.monitoring.state == "alarm"
            and not self.monitoring.failing
        )

    @functools.cached_property
    def evidence(self) -> EvidenceSection:
        return EvidenceSection(self.ticket, self.user, self.roles, self.now)

    @functools.cached_property
    def checks(self) -> list[CheckResult]:
        """Every CI check report, newest first, with who reported it."""
        return list(self.ticket.checks.select_related("reported_by"))

    @functools.cached_property
    def check_groups(self) -> list[dict[str, object]]:
        """The reports grouped by name (required checks first), each with its history."""
        return group_checks(self.ticket, self.checks)

    @functools.cached_property
    def follow_ups(self) -> list[FollowUp]:
        return follow_ups_of(self.ticket)

    @property
    def may_complete_follow_ups(self) -> bool:
        return policy.may_complete_follow_ups(self.roles, superuser=self.superuser)

    @functools.cached_property
    def pull_request(self) -> PullRequest | None:
        return PullRequest.for_commit(self.ticket.commit_sha)

    @functools.cached_property
    def events(self) -> list[AuditEvent]:
        return list(audit_for_ticket(self.ticket))

    @property
    def risk(self) -> dict[str, Any]:
        return self.ticket.risk or {}

    # --- the review surface (selectors/review.py, selectors/timeline.py)

    @functools.cached_property
    def plan_review(self) -> PlanReview | None:
        return plan_review(self.plan)

    @functools.cached_property
    def commit_review(self) -> CommitReview:
        return commit_review(self.ticket, self.plan, self.user)

    @functools.cached_property
    def approvers_needed(self) -> tuple[Approver, ...]:
        return approvers_needed(self.ticket, self.votes, self.now)

    @functools.cached_property
    def timeline(self) -> list[TimelineStep]:
        return ticket_timeline(
            self.ticket,
            runs=self.runs,
            approvals=self.approvals,
            approval_status=self.approval_status,
            check_groups=self.check_groups,
            events=self.events,
            now=self.now,
        )

    @property
    def shows_risk(self) -> bool:
        """The risk section (questionnaire, blast radius, rollback plan) where the
        environment asks for change details or scores approvals by risk, or the ticket
        carries them, or its plan scored above low (a forgotten or destroyed data holder
        is worth reading anywhere); a dev or staging ticket does not show an empty
        questionnaire."""
        env, ticket = self.ticket.environment, self.ticket
        return bool(
            env.requires_change_details
            or env.risk_rules
            or ticket.risk_assessment
            or ticket.rollback_plan
            or self.risk.get("level") in ("medium", "high")
        )

    @property
    def shows_rollback_box(self) -> bool:
        """The rollback box where this viewer may roll back, or where the environment asks
        for a rollback plan (prod: the reason why not is worth reading)."""
        action = self.actions["rollback"]
        return action.relevant and (
            action.allowed or bool(self.ticket.environment.requires_change_details)
        )


def ticket_view(ticket: Ticket, user: Any, now: dt.datetime) -> TicketView:
    """The ticket (from ticket_get) as ``user`` sees it at ``now``: what the ticket page
    renders and TicketDetailSerializer returns."""
    return TicketView(ticket, user, now)
