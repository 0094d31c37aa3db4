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


def missing_ticket_fields(env: Environment, ticket: Ticket) -> list[str]:
    """What an environment requires a ticket to carry before it is filed and it lacks
    (the caller answers 400 naming them: it is missing input, not a refused person)."""
    if not env.requires_change_details:
        return []
    return [
        name
        for name, value in (
            ("description", ticket.description.strip()),
            ("risk_assessment", ticket.risk_assessment),
            ("rollback_plan", ticket.rollback_plan),
        )
        if not value
    ]


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


def _base_rule_field(ticket: Ticket) -> str:
    emergency = ticket.change_type == "emergency" and ticket.environment.emergency_approval_rule
    return "emergency_approval_rule" if emergency else "approval_rule"


def rule_for(ticket: Ticket) -> Rule:
    """The approval rule that applies: the emergency rule for emergency tickets, replaced by
    the environment's rule for the ticket's risk level when it has one (see risk_rule)."""
    env = ticket.environment
    field = _base_rule_field(ticket)
    override = risk_rule(env, _risk_level(ticket), field)
    if override is not None:
        return override
    return Rule.parse(getattr(env, field))


# --- risk levels and approvals ---------------------------------------------------

RISK_LEVELS = ("low", "medium", "high")
RISK_RULE_FIELDS = ("approval_rule", "emergency_approval_rule")


def _risk_level(ticket: Ticket) -> str:
    risk = getattr(ticket, "risk", None)
    risk = risk if isinstance(risk, dict) else {}
    level = risk.get("level", "")
    return level if level in RISK_LEVELS else ""


def parse_risk_rules(data: Mapping[str, Any] | None) -> dict[str, dict[str, Rule]]:
    """Validate an environment's ``risk_rules``: {level: {approval_rule|emergency_approval_rule:
    rule}}; ValueError names what is wrong."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("risk_rules must be an object keyed by risk level")
    parsed: dict[str, dict[str, Rule]] = {}
    for level, rules in data.items():
        if level not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {level!r}; one of {', '.join(RISK_LEVELS)}")
        if not isinstance(rules, Mapping):
            raise ValueError(f"risk_rules.{level} must be an object")
        unknown = set(rules) - set(RISK_RULE_FIELDS)
        if unknown:
            raise ValueError(
                f"risk_rules.{level}: unknown keys {sorted(unknown)}; use "
                f"{' and '.join(RISK_RULE_FIELDS)}"
            )
        parsed[level] = {}
        for field, rule in rules.items():
            if not isinstance(rule, Mapping):
                raise ValueError(f"risk_rules.{level}.{field} must be an approval rule object")
            try:
                parsed[level][field] = Rule.parse(rule)
            except ValueError as exc:
                raise ValueError(f"risk_rules.{level}.{field}: {exc}") from None
    return parsed


def risk_rule(env: Environment, level: str, field: str = "approval_rule") -> Rule | None:
    """The rule the environment sets for tickets of ``level`` instead of ``field``, if any.
    An unparseable stored value is ignored here (environment_validate refuses it)."""
    try:
        return parse_risk_rules(getattr(env, "risk_rules", None) or {}).get(level, {}).get(field)
    except ValueError:
        return None


def risk_rule_note(ticket: Ticket) -> str:
    """Why the ticket needs more than the environment's usual rule, or ""."""
    level = _risk_level(ticket)
    field = _base_rule_field(ticket)
    override = risk_rule(ticket.environment, level, field)
    if override is None:
        return ""
    try:
        usual = Rule.parse(getattr(ticket.environment, field)).describe()
    except ValueError:
        usual = "its usual rule"
    kind = "emergency " if field == "emergency_approval_rule" else ""
    return (
        f"the assessed risk is {level}, so this {kind}{ticket.environment.name} ticket needs "
        f"{override.describe()} instead of {usual}"
    )


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
