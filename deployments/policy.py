"""The rules, as pure functions over (environment or ticket, user, time).

Each refusal is a :class:`PolicyError` whose message is a sentence a person
understands. Nothing here touches the database beyond reading attributes of
the objects it is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .choices import ALLOWED_TRANSITIONS, TicketStatus

if TYPE_CHECKING:
    from .models import Environment, Ticket


class PolicyError(Exception):
    """A rule refuses the action; ``kind`` maps it to HTTP (actor → 403, state → 409)."""

    ACTOR = "actor"
    STATE = "state"

    def __init__(self, message: str, kind: str = STATE) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


# --- transitions --------------------------------------------------------------


def check_transition(current: str, target: str) -> None:
    """Refuse any move that is not in ALLOWED_TRANSITIONS."""
    allowed = ALLOWED_TRANSITIONS.get(TicketStatus(current), frozenset())
    if TicketStatus(target) not in allowed:
        raise PolicyError(
            f"a ticket that is {TicketStatus(current).label.lower()} cannot become "
            f"{TicketStatus(target).label.lower()}"
        )


# --- environment access ----------------------------------------------------------


def _holds_any(groups: Iterable[str], wanted: Iterable[str]) -> bool:
    return bool(set(groups) & set(wanted))


def _rule_roles(data: Mapping[str, Any] | None) -> frozenset[str]:
    try:
        return Rule.parse(data).roles
    except ValueError:
        return frozenset()


def approver_roles(env: Environment) -> frozenset[str]:
    """Every role that may approve some ticket of the environment (normal or emergency)."""
    return _rule_roles(env.approval_rule) | _rule_roles(env.emergency_approval_rule)


def can_view(env: Environment, user_groups: Iterable[str], *, superuser: bool = False) -> bool:
    """May this person see every ticket, run and log of the environment?

    Its ``view_groups`` may, and so may its approvers: nobody is asked to approve
    what they cannot read. Others see only the tickets they filed (may_see_ticket).
    """
    groups = set(user_groups)
    return (
        superuser or _holds_any(groups, env.view_groups) or _holds_any(groups, approver_roles(env))
    )


def can_see_environment(
    env: Environment, user_groups: Iterable[str], *, superuser: bool = False
) -> bool:
    """May this person see the environment's policy: those who see its tickets or may file one."""
    return can_view(env, user_groups, superuser=superuser) or _holds_any(
        user_groups, env.file_groups
    )


def may_see_ticket(
    ticket: Ticket, user_id: int | None, user_groups: Iterable[str], *, superuser: bool = False
) -> bool:
    """The one visibility rule (SPEC §2): the environment's viewers and approvers see its
    tickets, runs and logs, and an author always sees their own; everyone else gets 404.
    ``selectors.tickets_visible_to`` is this rule written as a query."""
    if user_id is not None and ticket.author_id == user_id:
        return True
    return can_view(ticket.environment, user_groups, superuser=superuser)


def check_may_file(
    env: Environment, user_groups: Iterable[str], *, superuser: bool = False
) -> None:
    if superuser or _holds_any(user_groups, env.file_groups):
        return
    raise PolicyError(
        f"you may not file {env.name} tickets: that needs one of the roles "
        f"{', '.join(env.file_groups) or '(none configured)'}",
        PolicyError.ACTOR,
    )


def check_ticket_fields(env: Environment, ticket: Ticket) -> None:
    """What an environment requires a ticket to carry before it is filed."""
    if env.requires_change_details:
        missing = [
            name
            for name, value in (
                ("description", ticket.description),
                ("risk_assessment", ticket.risk_assessment),
                ("rollback_plan", ticket.rollback_plan),
            )
            if not value
        ]
        if missing:
            raise PolicyError(f"{env.name} tickets need {', '.join(missing)}", PolicyError.ACTOR)


LEAD_ROLES = frozenset({"lead_developer", "tech_lead", "devops_lead"})


def check_may_cancel(
    ticket: Ticket, user_id: int, user_groups: Iterable[str], *, superuser: bool = False
) -> None:
    """The author or a lead may withdraw a ticket."""
    if superuser or ticket.author_id == user_id or _holds_any(user_groups, LEAD_ROLES):
        return
    raise PolicyError("only the ticket's author or a lead can cancel it", PolicyError.ACTOR)


def replan_voids_approvals(ticket: Ticket, votes: Sequence[Vote]) -> bool:
    """Would a new plan void approvals? It does when any stand, or the ticket is approved."""
    if votes:
        return True
    approved = ticket.status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED)
    return approved and rule_for(ticket).required


def check_may_plan(
    ticket: Ticket,
    user_id: int,
    user_groups: Iterable[str],
    *,
    votes: Sequence[Vote],
    superuser: bool = False,
) -> None:
    """Who may re-plan. A new plan voids the standing approvals, so when there are any only
    the author or a holder of one of the ticket's approver roles may, never a bystander
    (operations could otherwise undo two leads' work with one click)."""
    env = ticket.environment
    groups = set(user_groups)
    approvers = rule_for(ticket).roles
    if replan_voids_approvals(ticket, votes):
        if ticket.author_id == user_id or groups & approvers:
            return
        who = ", ".join(v.approver_name for v in votes)
        voided = f"the approvals of {who}" if who else "the ticket's approval"
        raises = " or ".join(role_label(r) for r in sorted(approvers)) or "an approver"
        raise PolicyError(
            f"a new plan would void {voided}; only the author or {_article(raises)} can re-plan it",
            PolicyError.ACTOR,
        )
    allowed = set(env.file_groups) | set(approvers)
    if superuser or ticket.author_id == user_id or groups & allowed:
        return
    raise PolicyError(
        f"only the author, an approver or someone who may file {env.name} tickets can re-plan it",
        PolicyError.ACTOR,
    )


# --- change windows --------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A weekly change window in a named time zone (DST aware)."""

    timezone: str
    days: tuple[int, ...]  # ISO weekdays, 1 = Monday
    start: dt.time
    end: dt.time

    @classmethod
    def of(cls, env: Environment) -> Window | None:
        if env.window_start is None or env.window_end is None:
            return None
        return cls(
            timezone=env.window_timezone,
            days=tuple(sorted(int(d) for d in env.window_days)),
            start=env.window_start,
            end=env.window_end,
        )

    def _bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        tz = ZoneInfo(self.timezone)
        start = dt.datetime.combine(day, self.start, tzinfo=tz)
        end_day = day if self.end > self.start else day + dt.timedelta(days=1)
        end = dt.datetime.combine(end_day, self.end, tzinfo=tz)
        # Round-trip through UTC so a wall time inside a DST gap lands on a real instant.
        return (
            start.astimezone(dt.UTC).astimezone(tz),
            end.astimezone(dt.UTC).astimezone(tz),
        )

    def contains(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        for offset in (0, -1):
            day = local.date() + dt.timedelta(days=offset)
            if day.isoweekday() in self.days:
                start, end = self._bounds(day)
                if start <= moment < end:
                    return True
        return False

    def next_start(self, moment: dt.datetime) -> dt.datetime | None:
        """The start of the window in progress at ``moment``, or else of the next one."""
        if not self.days:
            return None
        local = moment.astimezone(ZoneInfo(self.timezone))
        for offset in range(-1, 9):
            day = local.date() + dt.timedelta(days=offset)
            if day.isoweekday() not in self.days:
                continue
            start, end = self._bounds(day)
            if moment < end:
                return start
        return None

    def describe(self) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = "/".join(names[d - 1] for d in self.days)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


def in_window(env: Environment, moment: dt.datetime) -> bool:
    """True when the environment has no window or ``moment`` falls inside it."""
    window = Window.of(env)
    return window is None or window.contains(moment)


def next_window_start(env: Environment, moment: dt.datetime) -> dt.datetime | None:
    window = Window.of(env)
    return window.next_start(moment) if window else None


def auto_deploys(env: Environment) -> bool:
    """May the portal apply this environment's tickets with nobody asking? Only where
    ``auto_deploy`` is set AND no approval rule and no change window apply: a row that
    says otherwise (a raw SQL edit, a data migration) is treated as manual, never as
    permission to skip approvals or the window."""
    if not env.auto_deploy or Window.of(env) is not None:
        return False
    try:
        rules = (Rule.parse(env.approval_rule), Rule.parse(env.emergency_approval_rule))
    except ValueError:
        return False
    return not any(rule.required for rule in rules)


# --- approval rules ------------------------------------------------------------

ROLE_LABELS = {
    "developer": "Developer",
    "lead_developer": "Lead Developer",
    "tech_lead": "Tech Lead",
    "devops_lead": "DevOps Lead",
    "qa": "QA",
    "operations": "Operations",
}


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role.replace("_", " ").title())


def _article(label: str) -> str:
    return f"an {label}" if label[:1].upper() in "AEIOU" else f"a {label}"


@dataclass(frozen=True)
class Rule:
    """Who must approve: every role in ``all_of`` (one person each) plus ``count`` people
    holding any role in ``any_of``. Stored on the environment as JSON; ``{}`` is none."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    count: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> Rule:
        """Validate the stored form; ValueError names what is wrong."""
        data = dict(data or {})
        unknown = set(data) - {"all_of", "any_of", "count"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; use all_of, any_of and count")
        all_of = tuple(data.get("all_of") or ())
        any_of = tuple(data.get("any_of") or ())
        for role in (*all_of, *any_of):
            if role not in ROLE_LABELS:
                raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLE_LABELS)}")
        if len(set(all_of)) != len(all_of):
            raise ValueError("all_of names a role twice")
        raw_count = data.get("count", 1 if any_of else 0)
        if not isinstance(raw_count, int) or isinstance(raw_count, bool) or raw_count < 0:
            raise ValueError("count must be a whole number")
        if any_of and raw_count < 1:
            raise ValueError("any_of needs a count of at least 1")
        if raw_count and not any_of:
            raise ValueError("count needs any_of")
        return cls(all_of=all_of, any_of=any_of, count=raw_count if any_of else 0)

    @property
    def slots(self) -> tuple[frozenset[str], ...]:
        """One slot per required person, each naming the roles that may fill it."""
        return tuple(frozenset({role}) for role in self.all_of) + tuple(
            frozenset(self.any_of) for _ in range(self.count)
        )

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.all_of) | frozenset(self.any_of)

    @property
    def required(self) -> bool:
        return bool(self.slots)

    def describe(self) -> str:
        parts: list[str] = []
        if self.all_of:
            labels = [role_label(r) for r in self.all_of]
            text = " and ".join(labels)
            if len(labels) > 1:
                text += ", two different people" if len(labels) == 2 else ", different people"
            parts.append(text)
        if self.any_of:
            who = " or ".join(role_label(r) for r in self.any_of)
            plural = "s" if self.count != 1 else ""
            parts.append(f"{self.count} approval{plural} from {_article(who)}")
        return "; plus ".join(parts) if parts else "no approval required"


def describe_rule(rule: Mapping[str, Any] | None) -> str:
    """A sentence for an approval rule stored as data on the environment."""
    try:
        return Rule.parse(rule).describe()
    except ValueError as exc:
        return f"an invalid rule ({exc})"


@dataclass(frozen=True)
class Vote:
    """A standing (not void) approval, as far as the rules care."""

    approver_id: int
    approver_name: str
    roles: frozenset[str]  # the rule's roles the approver held when approving
    role: str = ""  # the role it was recorded under (kept when still possible)


def assign(rule: Rule, votes: Sequence[Vote]) -> list[int] | None:
    """Give each vote its own slot (index into ``rule.slots``), or None if impossible.

    A person counts once, whatever roles they hold. Recorded roles are kept when a
    full assignment allows it; otherwise a dual-role approver moves to the role only
    they can fill, so an order of approvals never blocks a quorum that exists.
    """
    slots = rule.slots
    taken: list[int | None] = [None] * len(slots)
    result: list[int] = [-1] * len(votes)

    def options(vote: Vote) -> list[int]:
        fits = [i for i, slot in enumerate(slots) if slot & vote.roles]
        return sorted(fits, key=lambda i: (vote.role not in slots[i] or vote.role == "", i))

    def place(index: int) -> bool:
        if index == len(votes):
            return True
        for slot in options(votes[index]):
            if taken[slot] is None:
                taken[slot], result[index] = index, slot
                if place(index + 1):
                    return True
                taken[slot] = None
        return False

    if len({v.approver_id for v in votes}) != len(votes):
        return None
    return result if place(0) else None


def slot_role(rule: Rule, slot: int, vote: Vote) -> str:
    """The role a vote counts for in a slot: its recorded one if it fits, else the first held."""
    allowed = rule.slots[slot]
    if vote.role in allowed and vote.role in vote.roles:
        return vote.role
    ordered = [*rule.all_of, *rule.any_of]
    return next(role for role in ordered if role in allowed and role in vote.roles)


@dataclass(frozen=True)
class Quorum:
    met: bool
    counted: tuple[tuple[Vote, str], ...]  # each standing vote and the role it counts for
    missing: tuple[str, ...]  # labels of the roles still needed, one per missing person

    def describe_missing(self) -> str:
        if not self.missing:
            return "nobody"
        return " and ".join(_article(label) for label in self.missing)


def quorum(rule: Rule, votes: Sequence[Vote]) -> Quorum:
    """Is the rule satisfied by these votes, and who is still needed."""
    placement = assign(rule, votes)
    if placement is None:
        # Cannot happen for votes accepted by check_may_approve; be explicit anyway.
        return Quorum(met=False, counted=(), missing=tuple(_slot_label(s) for s in rule.slots))
    filled = set(placement)
    counted = tuple(
        (vote, slot_role(rule, slot, vote)) for vote, slot in zip(votes, placement, strict=True)
    )
    missing = tuple(_slot_label(slot) for i, slot in enumerate(rule.slots) if i not in filled)
    return Quorum(met=not missing, counted=counted, missing=missing)


def _slot_label(slot: frozenset[str]) -> str:
    return " or ".join(sorted(role_label(r) for r in slot))


def rule_for(ticket: Ticket) -> Rule:
    """The approval rule that applies: the emergency rule for emergency tickets."""
    env = ticket.environment
    if ticket.change_type == "emergency" and env.emergency_approval_rule:
        return Rule.parse(env.emergency_approval_rule)
    return Rule.parse(env.approval_rule)


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
) -> str:
    """May this person approve the ticket's current plan? Returns the role they count for."""
    env_name = ticket.environment.name
    rule = rule_for(ticket)
    if not rule.required:
        raise PolicyError(f"{env_name} tickets need no approval")
    if ticket.author_id == user_id:
        raise PolicyError(
            "you authored this ticket; someone else must approve it", PolicyError.ACTOR
        )
    status = TicketStatus(ticket.status)
    if status != TicketStatus.AWAITING_APPROVAL:
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
    placement = assign(rule, [*votes, candidate])
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


def check_may_reject(ticket: Ticket, *, user_id: int, user_roles: Iterable[str]) -> None:
    """Those who could approve may reject instead; the author cancels."""
    if ticket.author_id == user_id:
        raise PolicyError(
            "you authored this ticket; cancel it instead of rejecting it", PolicyError.ACTOR
        )
    rule = rule_for(ticket)
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


def check_may_deploy(
    ticket: Ticket, *, user_roles: Iterable[str], now: dt.datetime, pending: str = ""
) -> None:
    """May this person start the apply now? ``pending`` describes approvals still missing."""
    env = ticket.environment
    if not _holds_any(user_roles, env.deploy_groups):
        who = " or ".join(role_label(g) for g in env.deploy_groups) or "nobody"
        raise PolicyError(f"{env.name} deploys are done by {who}", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status == TicketStatus.AWAITING_APPROVAL:
        raise PolicyError(f"the ticket is not approved yet: it still needs {pending or 'approval'}")
    if status not in (TicketStatus.APPROVED, TicketStatus.SCHEDULED):
        raise PolicyError(f"a ticket that is {status.label.lower()} cannot be deployed")
    window = Window.of(env)
    if window and ticket.change_type != "emergency" and not window.contains(now):
        start = window.next_start(now)
        when = f"; the next window opens {start.isoformat()}" if start else ""
        raise PolicyError(
            f"{env.name} deploys only inside the change window ({window.describe()}){when}"
        )


# --- the start of an apply ------------------------------------------------------


class ApplyRefused(PolicyError):
    """An apply that may not start; ``back_to`` is the ticket status it returns to."""

    def __init__(self, message: str, back_to: TicketStatus) -> None:
        super().__init__(message)
        self.back_to = back_to


def check_apply_may_start(
    ticket: Ticket,
    *,
    now: dt.datetime,
    plan_sha256: str,
    current_plan_sha256: str,
    votes: Sequence[Vote],
    stray_approvals: int = 0,
) -> None:
    """May the apply of ``plan_sha256`` start now? Asked when deploy is requested and again
    by the worker at the moment Terraform would start (the window may have closed and
    approvers may have lost their role since).

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
    window = Window.of(env)
    if window and ticket.change_type != "emergency" and not window.contains(now):
        start = window.next_start(now)
        when = f"; the next window opens {start.isoformat()}" if start else ""
        raise ApplyRefused(
            f"{env.name} deploys only inside the change window ({window.describe()}) and it "
            f"was closed when the apply would have started ({now.isoformat()}){when}; deploy "
            "again inside the window",
            TicketStatus.APPROVED,
        )
    rule = rule_for(ticket)
    if not rule.required or env.auto_deploy:
        return
    counted = [v for v in votes if v.roles and v.approver_id != ticket.author_id]
    dropped = [v.approver_name for v in votes if v not in counted]
    state = quorum(rule, counted)
    if state.met and not stray_approvals:
        return
    why = (
        f"{', '.join(dropped)} no longer hold{'s' if len(dropped) == 1 else ''} the role "
        "they approved under"
        if dropped
        else "the standing approvals do not cover this plan"
    )
    raise ApplyRefused(
        f"the approvals no longer hold ({why}); it needs {state.describe_missing()} before "
        "it can be deployed",
        TicketStatus.AWAITING_APPROVAL,
    )


# --- testing evidence, QA sign-off and the promotion gate ------------------------------
#
# Who may do what with evidence (SPEC §5 "Only QA may upload qa_report or sign evidence off
# as passed"): anyone who can see a ticket may attach screenshots, smoke-test results and
# other files to it, unreviewed or as failed (CI reports a red smoke-test run itself); only
# QA uploads a qa_report, and only QA gives a verdict of passed, at upload or by signing an
# item off. A sign-off is given once per item: a new verdict needs a new upload.

QA_ROLE = "qa"
# The passed evidence that completes a staging ticket and lets its commit go to prod.
SIGNOFF_KINDS = ("smoke_tests", "qa_report")
SIGNOFF_KIND_LABELS = {"smoke_tests": "passed smoke_tests", "qa_report": "passed qa_report"}
_NO_EVIDENCE_STATUSES = frozenset({TicketStatus.CANCELLED, TicketStatus.REJECTED})


def check_may_upload_evidence(
    ticket: Ticket, *, user_roles: Iterable[str], kind: str, passed: bool | None
) -> None:
    """May someone who can see the ticket attach evidence of this kind and verdict?"""
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise PolicyError(f"a ticket that is {status.label.lower()} takes no more evidence")
    is_qa = QA_ROLE in set(user_roles)
    if kind == "qa_report" and not is_qa:
        raise PolicyError("only QA may upload a qa_report", PolicyError.ACTOR)
    if passed is True and not is_qa:
        raise PolicyError(
            "only QA may mark evidence passed; upload it without a verdict (or as failed) "
            "and QA signs it off",
            PolicyError.ACTOR,
        )


def check_may_sign_off(
    ticket: Ticket, *, user_roles: Iterable[str], signed_off_by: str = ""
) -> None:
    """May this person give an item its QA verdict? QA only, once per item."""
    if QA_ROLE not in set(user_roles):
        raise PolicyError("only QA may sign evidence off", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise PolicyError(f"a ticket that is {status.label.lower()} takes no more sign-offs")
    if signed_off_by:
        raise PolicyError(
            f"{signed_off_by} already signed this evidence off; upload new evidence for a new "
            "verdict"
        )


@dataclass(frozen=True)
class Verdict:
    """One item's verdict, as far as sign-off cares (in the order the verdicts were given)."""

    kind: str
    passed: bool | None
    filename: str = ""


def signoff_missing(verdicts: Sequence[Verdict]) -> tuple[str, ...]:
    """What a staging ticket still lacks before QA's sign-off completes it: for each of
    smoke_tests and qa_report, the latest verdict given must be a pass. Pure; ordered."""
    latest: dict[str, bool] = {}
    for verdict in verdicts:
        if verdict.passed is not None:
            latest[verdict.kind] = verdict.passed
    return tuple(SIGNOFF_KIND_LABELS[k] for k in SIGNOFF_KINDS if latest.get(k) is not True)


def failed_smoke_tests(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The failed smoke-test run that still stands (no later pass), if any."""
    standing: Verdict | None = None
    for verdict in verdicts:
        if verdict.kind == "smoke_tests" and verdict.passed is not None:
            standing = None if verdict.passed else verdict
    return standing


def completes_on_signoff(ticket: Ticket) -> bool:
    """Is this a ticket that QA's sign-off completes (staging, after its apply)?"""
    return bool(ticket.environment.requires_qa_signoff) and ticket.status == TicketStatus.MONITORING


@dataclass(frozen=True)
class StagingEvidence:
    """A staging ticket as the promotion gate sees it."""

    ticket_id: int
    url: str
    status: str
    commit_sha: str
    missing: tuple[str, ...]  # what its evidence lacks (signoff_missing)

    @property
    def validated(self) -> bool:
        return self.status == TicketStatus.COMPLETED and not self.missing


def promotion_applies(ticket: Ticket) -> bool:
    """The gate guards normal changes to environments that ask for staging evidence (prod);
    emergencies and rollbacks skip it (SPEC §1)."""
    return bool(ticket.environment.requires_staging_evidence) and ticket.change_type == "normal"


def check_promotion(
    ticket: Ticket,
    staging: StagingEvidence | None,
    *,
    validated_elsewhere: StagingEvidence | None = None,
) -> None:
    """May the ticket be approved as a promotion? Its commit needs a completed staging ticket
    with passed QA evidence. ``staging`` is the staging ticket of the same commit (None when
    there is none); ``validated_elsewhere`` the latest validated staging ticket of another
    commit, named in the refusal so nobody approves a commit QA never saw."""
    if not promotion_applies(ticket):
        return
    env = ticket.environment.name
    short = ticket.commit_sha[:10]
    if staging is None:
        other = ""
        if validated_elsewhere is not None:
            other = (
                f"; staging validated commit {validated_elsewhere.commit_sha[:10]} "
                f"(ticket #{validated_elsewhere.ticket_id}, {validated_elsewhere.url}), "
                "not this one"
            )
        raise PolicyError(
            f"{env} needs commit {short} validated in staging first: no staging ticket of "
            f"this commit exists{other}; file one, deploy it and have QA sign it off "
            "(passed smoke_tests and qa_report)"
        )
    if staging.validated:
        return
    if staging.status != TicketStatus.COMPLETED:
        state = TicketStatus(staging.status).label.lower()
        needs = f"; it still needs {' and '.join(staging.missing)}" if staging.missing else ""
        raise PolicyError(
            f"{env} needs commit {short} validated in staging first: staging ticket "
            f"#{staging.ticket_id} ({staging.url}) is {state}, not completed{needs}"
        )
    raise PolicyError(
        f"{env} needs commit {short} validated in staging first: staging ticket "
        f"#{staging.ticket_id} ({staging.url}) is completed but lacks "
        f"{' and '.join(staging.missing)} evidence"
    )
