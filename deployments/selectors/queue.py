""" "What needs me": every queue of the home page and of ``GET /api/v1/me/queue/``.

One entry point, :func:`queue_for`, reads everything in a constant number of queries
(whatever the number of tickets): the environments with their last deployment and whether
an apply runs (one query), the tickets that concern the person (one query, plus one for the
standing approvals of those awaiting approval), the overdue follow-ups (one) and the
freezes that bound the change windows (one). Who may act on what is decided by the pure
rules in :mod:`deployments.policy`, the same ones the action itself checks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce

from deployments import policy
from deployments.choices import (
    ACTIVE_RUN_STATUSES,
    TERMINAL_STATUSES,
    RunKind,
    RunStatus,
    TicketStatus,
)
from deployments.lib import presentation
from deployments.models import (
    Approval,
    ChecklistItem,
    Deployment,
    Environment,
    Evidence,
    FollowUp,
    Freeze,
    MonitoringPeriod,
    TerraformRun,
    Ticket,
)
from deployments.selectors.access import is_superuser, user_roles
from deployments.selectors.approvals import attach_approver_roles, votes_for
from deployments.selectors.checks import attach_latest_check_statuses
from deployments.selectors.tickets import check_may_approve_now
from deployments.selectors.windows import (
    annotated_stale,
    stale_plan_expression,
    window_of_instant,
)

# "My tickets": every ticket not finished, and the finished ones changed this recently.
MY_RECENT = dt.timedelta(days=14)
# The most rows a section lists (its count is still the full number).
SECTION_ROWS = 50
MY_TICKETS_ROWS = 20
# Follow-ups are listed from this long before they are due ("due in 5 h"), not once overdue.
FOLLOW_UP_SOON = dt.timedelta(hours=24)

_DEPLOYABLE = (TicketStatus.APPROVED, TicketStatus.SCHEDULED)
# Nothing more to do for the author (a completed ticket may still be rolled back, by others).
FINISHED_STATUSES = frozenset(TERMINAL_STATUSES | {TicketStatus.COMPLETED})


@dataclass(frozen=True)
class WindowState:
    """When a normal deploy of the environment may start, as seen at ``now``."""

    has_window: bool
    in_window_now: bool
    closes_at: dt.datetime | None  # the open window's end (or a freeze's start), if open
    next_window_start: dt.datetime | None  # when closed: the next opening (freezes applied)
    zone: str

    def describe(self, now: dt.datetime) -> str:
        if not self.has_window and self.in_window_now:
            return "no change window: deploy any time"
        if self.in_window_now:
            if self.closes_at is None:
                return "in window now"
            return f"in window now, closes in {presentation.duration(self.closes_at - now)}"
        if self.next_window_start is None:
            return "no window opens in the next 400 days"
        return f"window opens in {presentation.duration(self.next_window_start - now)}"


@dataclass(frozen=True)
class ApprovalItem:
    ticket: Ticket
    waiting_since: dt.datetime
    waiting_for: dt.timedelta
    risk_level: str
    emergency: bool
    reason: str = ""  # what the approval still needs ("" once it is the last one)
    deadline: dt.datetime | None = None  # an immediate rollback's hour ends then


@dataclass(frozen=True)
class BlockedItem:
    """A ticket the person could approve but for a gate of the ticket (the promotion gate,
    a required CI check): not theirs to act on yet, shown apart with the reason."""

    ticket: Ticket
    reason: str


@dataclass(frozen=True)
class DeployItem:
    ticket: Ticket
    emergency: bool
    scheduled_for: dt.datetime | None
    window: WindowState
    may_start_now: bool  # policy.check_may_deploy passes now, no apply runs, plan current
    busy: bool  # another apply is running on the environment
    countdown: str
    reason: str = ""  # why it may not start now ("" when it may)
    deadline: dt.datetime | None = None  # until when it may start (window end, rollback hour)
    stale: bool = False  # another deploy changed the state since its plan: re-plan first
    # The times the reason names, shown in the reader's zone (templatetags portal_time).
    noted: tuple[tuple[str, dt.datetime], ...] = ()


@dataclass(frozen=True)
class MonitoringItem:
    """A ticket in its monitoring period, for operations: the checklist and Complete."""

    ticket: Ticket
    ends_at: dt.datetime | None
    open_items: tuple[str, ...]  # checklist items not signed yet
    alarm: str  # "" · "alarm" (standing) · "acknowledged"
    may_complete: bool  # every rule of Complete holds now
    reason: str  # what is left to do, or "ready: complete it"


@dataclass(frozen=True)
class QaItem:
    ticket: Ticket
    monitoring_since: dt.datetime
    missing: tuple[str, ...]  # what the sign-off still lacks (policy.signoff_missing)


@dataclass(frozen=True)
class MyTicketItem:
    ticket: Ticket
    active: bool  # not in a terminal state


@dataclass(frozen=True)
class FollowUpItem:
    follow_up: FollowUp
    ticket: Ticket
    overdue_for: dt.timedelta  # negative while it is not due yet

    @property
    def overdue(self) -> bool:
        return self.overdue_for > dt.timedelta(0)

    @property
    def due_in(self) -> dt.timedelta:
        return -self.overdue_for


@dataclass(frozen=True)
class LastDeployment:
    deployment_id: int
    ticket_id: int
    commit_sha: str
    finished_at: dt.datetime
    outcome: str
    rolled_back: bool

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]


@dataclass(frozen=True)
class EnvironmentItem:
    environment: Environment
    last: LastDeployment | None
    window: WindowState
    busy: bool


@dataclass(frozen=True)
class Sections:
    """Which sections concern the person (the page hides the others)."""

    approvals: bool
    deploys: bool
    qa_signoffs: bool
    my_tickets: bool
    follow_ups: bool
    monitoring: bool = False


@dataclass(frozen=True)
class Queue:
    now: dt.datetime
    sections: Sections
    approvals: list[ApprovalItem] = field(default_factory=list)
    approvals_count: int = 0
    approvals_blocked: list[BlockedItem] = field(default_factory=list)
    approvals_blocked_count: int = 0
    deploys: list[DeployItem] = field(default_factory=list)
    deploys_count: int = 0
    qa_signoffs: list[QaItem] = field(default_factory=list)
    qa_signoffs_count: int = 0
    monitoring: list[MonitoringItem] = field(default_factory=list)
    monitoring_count: int = 0
    my_tickets: list[MyTicketItem] = field(default_factory=list)
    my_tickets_count: int = 0  # the ones not finished
    my_finished_count: int = 0  # finished in the last MY_RECENT
    follow_ups: list[FollowUpItem] = field(default_factory=list)  # overdue
    follow_ups_count: int = 0
    follow_ups_due_soon: list[FollowUpItem] = field(default_factory=list)
    follow_ups_due_soon_count: int = 0
    environments: list[EnvironmentItem] = field(default_factory=list)
    can_file: bool = False  # may file a ticket in some environment

    @property
    def waiting(self) -> int:
        """Things waiting for this person to act: the number in the nav badge."""
        return (
            self.approvals_count
            + self.deploys_count
            + self.qa_signoffs_count
            + self.monitoring_count
            + self.follow_ups_count
            + self.follow_ups_due_soon_count
        )

    @property
    def my_open(self) -> list[MyTicketItem]:
        return [m for m in self.my_tickets if m.active]

    @property
    def my_finished(self) -> list[MyTicketItem]:
        return [m for m in self.my_tickets if not m.active]

    @property
    def follow_ups_all(self) -> list[FollowUpItem]:
        """Overdue first (oldest deadline first), then those due soon."""
        return [*self.follow_ups, *self.follow_ups_due_soon]


# --- helpers -----------------------------------------------------------------------


def _possible_approver_roles(env: Environment) -> frozenset[str]:
    """Every role any rule of the environment names, risk-level rules included."""
    roles = set(policy.approver_roles(env))
    try:
        for rules in policy.parse_risk_rules(env.risk_rules or {}).values():
            for rule in rules.values():
                roles |= rule.roles
    except ValueError:
        pass
    return frozenset(roles)


def _window_state(env: Environment, now: dt.datetime, freezes: list[Freeze]) -> WindowState:
    """policy.in_window / next_window_start, plus when the open window closes."""
    open_now = policy.in_window(env, now, freezes)
    closes: dt.datetime | None = None
    if open_now and env.has_window:
        occurrence = window_of_instant(env, now)
        closes = occurrence[1] if occurrence else None
    if open_now:
        cut = [f.starts_at for f in freezes if f.starts_at > now]
        if cut and (closes is None or min(cut) < closes):
            closes = min(cut)
    return WindowState(
        has_window=env.has_window,
        in_window_now=open_now,
        closes_at=closes,
        next_window_start=None if open_now else policy.next_window_start(env, now, freezes),
        zone=env.window_timezone or "UTC",
    )


def _latest_verdict(kind: str) -> Subquery:
    """The latest verdict given on the ticket's evidence of ``kind`` (as selectors.evidence
    orders them: by sign-off time, else upload time)."""
    return Subquery(
        Evidence.objects.filter(
            ticket=OuterRef("pk"), kind=kind, passed__isnull=False, withdrawn_at__isnull=True
        )
        .annotate(at=Coalesce(F("signed_off_at"), F("uploaded_at")))
        # Only verdicts given after the apply count (selectors.evidence.verdicts).
        .filter(at__gte=OuterRef("deployed_at"))
        .order_by("-at", "-id")
        .values("passed")[:1]
    )


def _last_deployment(field_name: str) -> Subquery:
    return Subquery(
        Deployment.objects.filter(environment=OuterRef("pk"))
        .order_by("-finished_at", "-id")
        .values(field_name)[:1]
    )


_LAST_FIELDS = ("id", "ticket_id", "commit_sha", "finished_at", "outcome", "rolled_back_at")


def environments_with_last_deployment() -> list[Environment]:
    """Every environment, annotated ``last_<field>`` with its newest deployment and ``busy``
    (an apply queued or running): one query."""
    return list(
        Environment.objects.annotate(
            **{f"last_{name}": _last_deployment(name) for name in _LAST_FIELDS},
            busy=Exists(
                TerraformRun.objects.filter(
                    environment=OuterRef("pk"),
                    kind=RunKind.APPLY,
                    status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES),
                )
            ),
        )
    )


def _last_of(env: Any) -> LastDeployment | None:
    if env.last_id is None:
        return None
    return LastDeployment(
        deployment_id=env.last_id,
        ticket_id=env.last_ticket_id,
        commit_sha=env.last_commit_sha,
        finished_at=env.last_finished_at,
        outcome=env.last_outcome,
        rolled_back=env.last_rolled_back_at is not None,
    )


def _approval_state(
    ticket: Ticket, user: Any, roles: frozenset[str], now: dt.datetime
) -> tuple[bool, str]:
    """(may approve now, why not): the person's own rules first (policy.check_may_approve:
    a refusal there means the ticket is not theirs to approve, ``(False, "")``), then the
    ticket's gates (the promotion gate, required CI checks): exactly what
    selectors.tickets.check_may_approve_now asks when they click Approve."""
    plan = ticket.current_plan
    votes = votes_for(ticket)
    has_plan = bool(plan and plan.status == RunStatus.SUCCEEDED and plan.plan_sha256)
    try:
        policy.check_may_approve(
            ticket,
            user_id=user.pk,
            username=user.get_username(),
            user_roles=roles,
            votes=votes,
            has_current_plan=has_plan,
            now=now,
        )
    except policy.PolicyError:
        return False, ""
    try:
        check_may_approve_now(ticket, user, roles=roles, votes=votes, has_plan=has_plan, now=now)
    except policy.PolicyError as exc:
        return False, exc.message
    return True, ""


def _still_needs(ticket: Ticket, now: dt.datetime) -> str:
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, votes_for(ticket))
    return f"needs {state.describe_missing()}" if state.missing else ""


# --- the queue ---------------------------------------------------------------------


def queue_for(user: Any, now: dt.datetime) -> Queue:
    """Everything waiting for ``user`` at ``now``, scoped to what they may see."""
    roles = user_roles(user)
    superuser = is_superuser(user)
    envs = environments_with_last_deployment()
    viewable = [e for e in envs if policy.can_view(e, roles, superuser=superuser)]
    viewable_ids = [e.pk for e in viewable]
    approve_ids = [e.pk for e in viewable if superuser or roles & _possible_approver_roles(e)]
    deploy_ids = [e.pk for e in viewable if superuser or roles & set(e.deploy_groups)]
    # Leads who may start an immediate rollback they approved (the environment says so).
    rollback_start_ids = [
        e.pk for e in viewable if e.pk not in deploy_ids and policy.lead_starts_rollbacks(e)
    ]
    qa_ids = (
        [e.pk for e in viewable if e.requires_qa_signoff]
        if superuser or policy.QA_ROLE in roles
        else []
    )
    # Operations completes monitored tickets where QA's sign-off does not (policy.monitoring).
    monitoring_ids = (
        [
            e.pk
            for e in viewable
            if policy.monitors(e) and not e.requires_qa_signoff and not e.auto_deploy
        ]
        if policy.is_operations(roles, superuser)
        else []
    )
    lead = policy.may_complete_follow_ups(roles, superuser=superuser)

    wanted = Q(author_id=user.pk) & (
        ~Q(status__in=sorted(FINISHED_STATUSES)) | Q(status_changed_at__gte=now - MY_RECENT)
    )
    if approve_ids:
        wanted |= Q(status=TicketStatus.AWAITING_APPROVAL, environment_id__in=approve_ids) & ~Q(
            author_id=user.pk
        )
    if deploy_ids:
        wanted |= Q(status__in=_DEPLOYABLE, environment_id__in=deploy_ids)
    if rollback_start_ids:
        wanted |= Q(
            status__in=_DEPLOYABLE,
            environment_id__in=rollback_start_ids,
            change_type="rollback",
            rollback_mode="immediate",
            rollback_immediate_until__gte=now,
        )
    if qa_ids:
        wanted |= Q(status=TicketStatus.MONITORING, environment_id__in=qa_ids)
    if monitoring_ids:
        wanted |= Q(status=TicketStatus.MONITORING, environment_id__in=monitoring_ids)
    tickets = list(
        Ticket.objects.filter(wanted)
        .select_related("environment", "stack", "author", "current_plan")
        .annotate(
            smoke_tests_verdict=_latest_verdict("smoke_tests"),
            qa_report_verdict=_latest_verdict("qa_report"),
            plan_stale=stale_plan_expression(),
        )
        .prefetch_related(
            Prefetch(
                "approvals",
                queryset=Approval.objects.filter(voided_at__isnull=True)
                .select_related("approver")
                .order_by("created_at", "id"),
                to_attr="standing_approvals",
            )
        )
        .order_by("status_changed_at", "id")
    )

    window_env_ids = set(viewable_ids) | {t.environment_id for t in tickets}
    freezes: dict[int, list[Freeze]] = {}
    for freeze in Freeze.objects.filter(
        environment_id__in=sorted(window_env_ids), ends_at__gt=now
    ).order_by("starts_at", "id"):
        freezes.setdefault(freeze.environment_id, []).append(freeze)
    windows = {e.pk: _window_state(e, now, freezes.get(e.pk, [])) for e in envs}
    busy = {e.pk: bool(getattr(e, "busy", False)) for e in envs}

    # Votes count the roles their approvers hold now (votes_for): read them once for the
    # tickets whose approval is asked or whose deploy is checked below.
    attach_approver_roles(
        approval
        for ticket in tickets
        if ticket.status in (TicketStatus.AWAITING_APPROVAL, *_DEPLOYABLE)
        for approval in ticket.standing_approvals
    )
    attach_latest_check_statuses(
        [
            t
            for t in tickets
            if t.status == TicketStatus.AWAITING_APPROVAL and t.environment_id in approve_ids
        ]
    )
    # The approve and deploy gates below may ask each plan's policies: the first one asked
    # reads them for all of these tickets at once (selectors.policies.check_plan_policies_of).
    gated = [
        t
        for t in tickets
        if (
            t.status == TicketStatus.AWAITING_APPROVAL
            and t.environment_id in approve_ids
            and t.author_id != user.pk
        )
        or (t.status in _DEPLOYABLE and t.environment_id in (*deploy_ids, *rollback_start_ids))
    ]
    for t in gated:
        t.policy_batch = gated  # type: ignore[attr-defined]
    approvals: list[ApprovalItem] = []
    blocked: list[BlockedItem] = []
    deploys: list[DeployItem] = []
    qa_items: list[QaItem] = []
    watched: list[Ticket] = []
    mine: list[MyTicketItem] = []
    for ticket in tickets:
        if ticket.author_id == user.pk and (
            ticket.status not in FINISHED_STATUSES or ticket.status_changed_at >= now - MY_RECENT
        ):
            mine.append(MyTicketItem(ticket, ticket.status not in FINISHED_STATUSES))
        env_id = ticket.environment_id
        if (
            ticket.status == TicketStatus.AWAITING_APPROVAL
            and env_id in approve_ids
            and ticket.author_id != user.pk
        ):
            may, why_not = _approval_state(ticket, user, roles, now)
            if may:
                approvals.append(
                    ApprovalItem(
                        ticket=ticket,
                        waiting_since=ticket.status_changed_at,
                        waiting_for=now - ticket.status_changed_at,
                        risk_level=str((ticket.risk or {}).get("level", "")),
                        emergency=policy.is_emergency(ticket),
                        reason=_still_needs(ticket, now),  # the slots still open (yours among them)
                        deadline=ticket.rollback_immediate_until
                        if policy.is_immediate_rollback(ticket, now)
                        else None,
                    )
                )
            elif why_not:
                blocked.append(BlockedItem(ticket, why_not))
        elif ticket.status in _DEPLOYABLE and (
            env_id in deploy_ids
            or (env_id in rollback_start_ids and _rollback_starter(ticket, user))
        ):
            deploys.append(
                _deploy_item(
                    ticket,
                    user,
                    roles,
                    now,
                    windows[env_id],
                    busy[env_id],
                    freezes.get(env_id, []),
                )
            )
        elif ticket.status == TicketStatus.MONITORING and env_id in qa_ids:
            verdicts = [
                policy.Verdict(kind, passed)
                for kind, passed in (
                    ("smoke_tests", ticket.smoke_tests_verdict),
                    ("qa_report", ticket.qa_report_verdict),
                )
                if passed is not None
            ]
            qa_items.append(
                QaItem(ticket, ticket.status_changed_at, policy.signoff_missing(verdicts))
            )
        elif ticket.status == TicketStatus.MONITORING and env_id in monitoring_ids:
            watched.append(ticket)

    # Emergencies first, then the longest waiting.
    approvals.sort(key=lambda a: (not a.emergency, a.waiting_since, a.ticket.pk))
    deploys.sort(
        key=lambda d: (
            not d.emergency,
            d.ticket.change_type != "rollback",
            not d.may_start_now,
            d.ticket.status == TicketStatus.SCHEDULED,
            d.scheduled_for or d.ticket.status_changed_at,
            d.ticket.pk,
        )
    )
    open_mine = [m for m in mine if m.active]
    finished_mine = [m for m in mine if not m.active]
    open_mine.sort(key=lambda m: (m.ticket.status_changed_at, m.ticket.pk))  # oldest change first
    finished_mine.sort(key=lambda m: (m.ticket.status_changed_at, m.ticket.pk), reverse=True)

    monitoring = _monitoring_items(watched, now)
    overdue, due_soon = _follow_ups(user, now, viewable_ids, lead=lead)
    sections = Sections(
        approvals=bool(approve_ids),
        # A lead who may start the immediate rollback they approved sees it here too.
        deploys=bool(deploy_ids) or bool(deploys),
        qa_signoffs=bool(qa_ids),
        my_tickets=True,
        follow_ups=True,
        monitoring=bool(monitoring_ids),
    )

    return Queue(
        now=now,
        sections=sections,
        approvals=approvals[:SECTION_ROWS],
        approvals_count=len(approvals),
        approvals_blocked=blocked[:SECTION_ROWS],
        approvals_blocked_count=len(blocked),
        deploys=deploys[:SECTION_ROWS],
        deploys_count=len(deploys),
        qa_signoffs=qa_items[:SECTION_ROWS],
        qa_signoffs_count=len(qa_items),
        monitoring=monitoring[:SECTION_ROWS],
        monitoring_count=len(monitoring),
        my_tickets=open_mine[:MY_TICKETS_ROWS] + finished_mine[:MY_TICKETS_ROWS],
        my_tickets_count=len(open_mine),
        my_finished_count=len(finished_mine),
        follow_ups=overdue[:SECTION_ROWS],
        follow_ups_count=len(overdue),
        follow_ups_due_soon=due_soon[:SECTION_ROWS],
        follow_ups_due_soon_count=len(due_soon),
        can_file=any(_may_file(e, roles, superuser) for e in envs),
        environments=[
            EnvironmentItem(environment=e, last=_last_of(e), window=windows[e.pk], busy=busy[e.pk])
            for e in viewable
        ],
    )


def _may_file(env: Environment, roles: frozenset[str], superuser: bool) -> bool:
    try:
        policy.check_may_file(env, roles, superuser=superuser)
    except policy.PolicyError:
        return False
    return True


def _rollback_starter(ticket: Ticket, user: Any) -> bool:
    """Did this lead approve the immediate rollback (the one who may start it)?"""
    standing = getattr(ticket, "standing_approvals", [])  # prefetched by queue_for
    return any(a.approver_id == user.pk for a in standing)


def _deploy_item(
    ticket: Ticket,
    user: Any,
    roles: frozenset[str],
    now: dt.datetime,
    window: WindowState,
    busy: bool,
    freezes: list[Freeze],
) -> DeployItem:
    """What the person may do with an approved or scheduled ticket, asked of the same rule
    the Deploy button asks (policy.check_may_deploy), plus a current plan and a free
    environment."""
    emergency = policy.is_emergency(ticket)
    immediate = policy.is_immediate_rollback(ticket, now)
    stale = annotated_stale(ticket)
    votes = votes_for(ticket)
    rule = policy.rule_for(ticket, now=now)
    reason = ""
    with presentation.noting_times() as noted:
        try:
            policy.check_may_deploy(
                ticket,
                user_roles=roles | policy.rollback_starter_roles(ticket, user.pk, votes, now=now),
                now=now,
                pending=policy.quorum(rule, votes).describe_missing(),
                quorum_met=not policy.needs_more_approval(ticket, votes, now=now),
                freezes=freezes,
            )
        except policy.PolicyError as exc:
            reason = exc.message
    if stale and not reason:
        reason = "its plan is stale (another deploy changed the environment): re-plan first"
    if busy and not reason:
        reason = "an apply is running on this environment; it may start once that one ends"
    may_start = not reason
    deadline: dt.datetime | None = None
    scheduled = ticket.status == TicketStatus.SCHEDULED and ticket.scheduled_for is not None
    if stale:
        countdown = "plan stale: re-plan" + (" and re-schedule" if scheduled else "")
    elif scheduled:
        assert ticket.scheduled_for is not None
        delta = ticket.scheduled_for - now
        countdown = (
            f"scheduled, starts in {presentation.duration(delta)}"
            if delta.total_seconds() > 0
            else "scheduled, starting now"
        )
    elif emergency and may_start:
        countdown = "emergency: may deploy now, outside any window"
    elif immediate and may_start:
        deadline = ticket.rollback_immediate_until
        left = presentation.duration(deadline - now) if deadline else ""
        countdown = "immediate rollback: may deploy now, outside any window" + (
            f" (for {left} more; then the planned path applies)" if left else ""
        )
    elif may_start:
        deadline = window.closes_at
        countdown = window.describe(now)
    elif policy.ignores_window(ticket, now) or window.in_window_now:
        countdown = reason
    else:
        countdown = window.describe(now)
    if busy and not stale:
        countdown += " (an apply is running on this environment)"
    return DeployItem(
        ticket=ticket,
        emergency=emergency,
        scheduled_for=ticket.scheduled_for if ticket.status == TicketStatus.SCHEDULED else None,
        window=window,
        may_start_now=may_start,
        busy=busy,
        countdown=countdown,
        reason=reason,
        deadline=deadline,
        stale=stale,
        noted=tuple(noted) if reason else (),
    )


def _monitoring_items(tickets: list[Ticket], now: dt.datetime) -> list[MonitoringItem]:
    """Operations' monitoring work: two queries (the periods, the checklists) for all."""
    if not tickets:
        return []
    ids = [t.pk for t in tickets]
    periods: dict[int, MonitoringPeriod] = {}
    for row in MonitoringPeriod.objects.filter(ticket_id__in=ids).order_by("-started_at", "-id"):
        periods.setdefault(row.ticket_id, row)
    items: dict[int, list[ChecklistItem]] = {}
    for item in ChecklistItem.objects.filter(ticket_id__in=ids).order_by("position", "id"):
        items.setdefault(item.ticket_id, []).append(item)
    out: list[MonitoringItem] = []
    for ticket in tickets:
        period = periods.get(ticket.pk)
        checklist = items.get(ticket.pk, [])
        alarm = (
            policy.Alarm(
                at=period.alarm_at,
                reason=period.alarm_reason,
                acknowledged=period.acknowledged_at is not None,
            )
            if period is not None and period.alarm_at is not None
            else None
        )
        ends_at = period.ends_at if period is not None else None
        try:
            policy.check_may_complete(
                ticket,
                [
                    policy.OpenItem(label=i.label, signed=i.signed_by_id is not None)
                    for i in checklist
                ],
                [alarm] if alarm else [],
                now,
                ends_at=ends_at,
            )
        except policy.PolicyError as exc:
            may_complete, reason = False, exc.message
        else:
            may_complete, reason = True, "ready: complete it"
        out.append(
            MonitoringItem(
                ticket=ticket,
                ends_at=ends_at,
                open_items=tuple(i.label for i in checklist if i.signed_by_id is None),
                alarm="" if alarm is None else ("acknowledged" if alarm.acknowledged else "alarm"),
                may_complete=may_complete,
                reason=reason,
            )
        )
    # A standing alarm first, then the ones that may complete, then by period end.
    far = now + dt.timedelta(days=3650)
    out.sort(key=lambda m: (m.alarm != "alarm", not m.may_complete, m.ends_at or far, m.ticket.pk))
    return out


def _follow_ups(
    user: Any, now: dt.datetime, viewable_ids: list[int], *, lead: bool
) -> tuple[list[FollowUpItem], list[FollowUpItem]]:
    """(overdue, due within FOLLOW_UP_SOON): leads see every one of the environments they
    see; everyone sees those of their own tickets."""
    scope = Q(ticket__author_id=user.pk)
    if lead:
        scope |= Q(ticket__environment_id__in=viewable_ids)
    rows = (
        FollowUp.objects.filter(scope, done_at__isnull=True, due_at__lte=now + FOLLOW_UP_SOON)
        .select_related("ticket", "ticket__environment", "ticket__author")
        .order_by("due_at", "id")
    )
    items = [FollowUpItem(f, f.ticket, now - f.due_at) for f in rows]
    return [i for i in items if i.follow_up.due_at <= now], [
        i for i in items if i.follow_up.due_at > now
    ]
