"""The rules, as pure functions over (environment or ticket, user, time).

Each refusal is a :class:`PolicyError` whose message is a sentence a person
understands. Nothing here touches the database beyond reading attributes of
the objects it is given.
"""

from __future__ import annotations

import datetime as dt
import re
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

    def __init__(
        self, message: str, kind: str = STATE, *, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        # Extra fields of the API's error body (e.g. the id of a conflicting ticket).
        self.data = dict(data or {})


# --- audit trail --------------------------------------------------------------

# Who reads the audit trail (page and API): operations, the leads, and staff.
AUDIT_READER_ROLES = frozenset({"operations", "lead_developer", "tech_lead", "devops_lead"})


def can_read_audit(user_groups: Iterable[str], *, staff: bool = False) -> bool:
    return staff or bool(AUDIT_READER_ROLES & set(user_groups))


def check_may_read_audit(user_groups: Iterable[str], *, staff: bool = False) -> None:
    if not can_read_audit(user_groups, staff=staff):
        raise PolicyError(
            "The audit trail is for operations and the leads.", kind=PolicyError.ACTOR
        )


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


def replan_voids_approvals(ticket: Ticket, votes: Sequence[Vote], *, now: dt.datetime) -> bool:
    """Would a new plan void approvals? It does when any stand, or the ticket is approved."""
    if votes:
        return True
    approved = ticket.status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED)
    return approved and rule_for(ticket, now=now).required


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


# --- change windows and freezes -------------------------------------------------
#
# Semantics (DST-correct for any IANA zone), decided once here:
#
# - A window is read off the environment's wall clock: an instant is inside when its local
#   time on a window day is in [start, end). A window whose end is not after its start
#   crosses midnight: it runs from start on a window day to end on the next day (the day
#   it starts on is the one that must be a window day).
# - A local start time that does not exist (spring forward, e.g. 02:30 in New York on the
#   second Sunday of March) opens the window at the moment the clock jumps past it: that
#   day's window is shorter by the gap. A local time that repeats (fall back) is inside
#   the window both times it occurs: that day's window is longer by the repeat.
# - A freeze is a half-open period [starts_at, ends_at) of absolute instants; no deploy
#   may begin inside it, window or not. An emergency ignores windows and freezes.
# - ``next_window(env, after)`` is the first instant at or after ``after`` at which a
#   deploy may begin (``after`` itself when that is allowed).

_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_HORIZON = dt.timedelta(days=400)


@dataclass(frozen=True)
class Period:
    """A freeze as the rules see it: a half-open period of absolute instants."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str = ""

    def contains(self, moment: dt.datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


def _periods(freezes: Iterable[Any]) -> list[Period]:
    return sorted(
        (Period(f.starts_at, f.ends_at, getattr(f, "reason", "") or "") for f in freezes),
        key=lambda p: (p.starts_at, p.ends_at),
    )


def _first_instant_at(tz: ZoneInfo, wall: dt.datetime, *, fold: int = 0) -> dt.datetime:
    """The instant (UTC) a local wall time is first reached; a wall time skipped by a
    spring-forward gap is 'reached' at the moment the clock jumps past it."""
    guess = wall.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC)
    if guess.astimezone(tz).replace(tzinfo=None) == wall:
        return guess
    # In a gap: the first instant whose wall time is >= wall lies between the two readings.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    high = wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    low, high = min(low, high), max(low, high)
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0) if high.microsecond else high


def _transitions(tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The instants in [start, end] at which the zone's UTC offset changes."""
    found: list[dt.datetime] = []
    step = dt.timedelta(hours=6)
    t = start
    while t < end:
        nxt = min(t + step, end)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            low, high = t, nxt
            while high - low > dt.timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append(high.replace(microsecond=0) if high.microsecond else high)
        t = nxt
    return found


@dataclass(frozen=True)
class Window:
    """A weekly change window in a named time zone (DST aware; semantics above)."""

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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, moment: dt.datetime) -> bool:
        """Is the local wall time of ``moment`` inside the window?"""
        local = moment.astimezone(self.tz)
        wall = local.time().replace(tzinfo=None)
        today = local.isoweekday() in self.days
        if not self.crosses_midnight:
            return today and self.start <= wall < self.end
        yesterday = (local.date() - dt.timedelta(days=1)).isoweekday() in self.days
        return (today and wall >= self.start) or (yesterday and wall < self.end)

    def occurrence(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The (UTC) instants the window of local ``day`` opens and closes: it opens when
        the wall clock first reaches start and closes when it last reaches end."""
        tz = self.tz
        opens = _first_instant_at(tz, dt.datetime.combine(day, self.start))
        end_day = day + dt.timedelta(days=1) if self.crosses_midnight else day
        closes = _first_instant_at(tz, dt.datetime.combine(end_day, self.end), fold=1)
        return opens, max(closes, opens)

    def occurrences(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Every occurrence overlapping [start, end), in order."""
        if not self.days:
            return []
        tz = self.tz
        day = start.astimezone(tz).date() - dt.timedelta(days=1)
        last = end.astimezone(tz).date()
        found = []
        while day <= last:
            if day.isoweekday() in self.days:
                opens, closes = self.occurrence(day)
                if opens < end and closes > start:
                    found.append((opens, closes))
            day += dt.timedelta(days=1)
        return found

    def next_start(self, moment: dt.datetime) -> dt.datetime | None:
        """The opening of the window in progress at ``moment``, or else of the next one."""
        if not self.days:
            return None
        for opens, closes in self.occurrences(moment, moment + dt.timedelta(days=9)):
            if moment < closes and (opens > moment or self.contains(moment)):
                return opens
        return None

    def candidates(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        """Every instant in [start, end) at which the window may switch from shut to open."""
        tz = self.tz
        found = list(_transitions(tz, start, end))
        day = start.astimezone(tz).date() - dt.timedelta(days=1)
        last = end.astimezone(tz).date() + dt.timedelta(days=1)
        while day <= last:
            wall = dt.datetime.combine(day, self.start)
            for fold in (0, 1):
                instant = _first_instant_at(tz, wall, fold=fold)
                if start <= instant < end:
                    found.append(instant)
            day += dt.timedelta(days=1)
        return found

    def describe(self) -> str:
        days = "/".join(_DAY_NAMES[d - 1] for d in self.days)
        return f"{days} {self.start:%H:%M}\u2013{self.end:%H:%M} {self.timezone}"


def frozen_by(moment: dt.datetime, freezes: Iterable[Any] = ()) -> Period | None:
    """The freeze in force at ``moment`` (the one ending last), or None."""
    hits = [p for p in _periods(freezes) if p.contains(moment)]
    return max(hits, key=lambda p: p.ends_at) if hits else None


def in_window(env: Environment, at: dt.datetime, freezes: Iterable[Any] = ()) -> bool:
    """May a normal deploy begin at ``at``? Inside the window (or no window) and no freeze."""
    if frozen_by(at, freezes) is not None:
        return False
    window = Window.of(env)
    return window is None or window.contains(at)


def next_window(
    env: Environment, after: dt.datetime, freezes: Iterable[Any] = ()
) -> dt.datetime | None:
    """The first instant at or after ``after`` at which a normal deploy may begin (freezes
    applied), or None when none comes within 400 days (no window days at all)."""
    periods = _periods(freezes)
    window = Window.of(env)
    if window is not None and not window.days:
        return None
    if in_window(env, after, periods):
        return after
    # The answer is an instant where the rules switch from "no" to "yes": a window opening,
    # a change of UTC offset (the wall clock jumps) or the end of a freeze.
    horizon = after + dt.timedelta(days=9)
    limit = after + _HORIZON
    while True:
        ends = [p.ends_at for p in periods if after <= p.ends_at < horizon]
        found = ends + (window.candidates(after, horizon) if window else [])
        for instant in sorted(set(found)):
            if in_window(env, instant, periods):
                return instant
        if horizon >= limit:
            return None
        horizon = min(horizon + dt.timedelta(days=30), limit)


def next_window_start(
    env: Environment, moment: dt.datetime, freezes: Iterable[Any] = ()
) -> dt.datetime | None:
    """The opening of the window in progress at ``moment`` or else of the next one, freezes
    applied (a window cut by a freeze counts from the freeze's end); None without a window."""
    window = Window.of(env)
    if window is None:
        return None
    periods = _periods(freezes)
    if not in_window(env, moment, periods):
        found = next_window(env, moment, periods)
    else:
        opens = window.next_start(moment) or moment
        found = max([opens, *(p.ends_at for p in periods if opens < p.ends_at <= moment)])
    return found.astimezone(window.tz) if found else None


def window_occurrences(
    env: Environment, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The window's occurrences overlapping [start, end), for calendars (freezes not cut)."""
    window = Window.of(env)
    return window.occurrences(start, end) if window else []


def _duration(delta: dt.timedelta) -> str:
    """'1 day 4 h', '3 h 5 min', '12 min': how long until something, for people."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


def format_in_zone(moment: dt.datetime, zone: str) -> str:
    """'Thu 02:00 EST (07:00 UTC)': a window time in its own zone with UTC."""
    local = moment.astimezone(ZoneInfo(zone))
    utc = moment.astimezone(dt.UTC)
    same_day = local.date() == utc.date()
    utc_text = f"{utc:%H:%M} UTC" if same_day else f"{utc:%a %H:%M} UTC"
    return f"{local:%a %d %b %H:%M %Z} ({utc_text})"


def describe_next_window(env: Environment, now: dt.datetime, freezes: Iterable[Any] = ()) -> str:
    """'the next window opens Thu 26 Nov 02:00 EST (07:00 UTC), in 1 day 4 h'."""
    nxt = next_window(env, now, freezes)
    if nxt is None:
        return "no window opens in the next 400 days"
    zone = env.window_timezone or "UTC"
    return f"the next window opens {format_in_zone(nxt, zone)}, in {_duration(nxt - now)}"


# --- who declares, changes and lifts freezes, and for how long -------------------------
#
# Per environment (Environment.freeze_groups; defaults: prod by a Tech Lead, a DevOps Lead
# or Operations; dev and staging by any lead or Operations). A freeze lasts at most
# FREEZE_MAX_DAYS (14 by default), measured from its start to its end, edits included.
# Lifting one early is an audited act of someone who may declare it.


def freeze_roles(env: Environment) -> frozenset[str]:
    """The roles that may declare, change and lift the environment's freezes."""
    groups = getattr(env, "freeze_groups", None)
    return frozenset(groups if isinstance(groups, list) else ())


def may_manage_freezes(
    env: Environment, user_roles: Iterable[str], *, superuser: bool = False
) -> bool:
    return superuser or _holds_any(user_roles, freeze_roles(env))


def check_may_manage_freezes(
    env: Environment, user_roles: Iterable[str], *, superuser: bool = False
) -> None:
    """Refuse (403) who may not declare, change or lift a freeze of ``env``."""
    if may_manage_freezes(env, user_roles, superuser=superuser):
        return
    who = " or ".join(role_label(r) for r in sorted(freeze_roles(env))) or "nobody"
    raise PolicyError(
        f"{env.name} freezes are declared, changed and lifted by {who}", PolicyError.ACTOR
    )


def freeze_length_problem(
    starts_at: dt.datetime, ends_at: dt.datetime, *, max_days: int
) -> tuple[str, str] | None:
    """(field, why) when a freeze's period cannot be kept, else None."""
    if ends_at <= starts_at:
        return "ends_at", "a freeze must end after it starts"
    if ends_at - starts_at > dt.timedelta(days=max_days):
        return "ends_at", (
            f"a freeze lasts at most {max_days} days (FREEZE_MAX_DAYS); this one would last "
            f"{_duration(ends_at - starts_at)}: declare a shorter one, and another when it is "
            "still needed"
        )
    return None


def check_may_lift_freeze(starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> str:
    """How a freeze is lifted at ``now``: "early" (in force: it ends now) or "cancel" (not
    started: it is withdrawn). Refused (409) once it is over."""
    if ends_at <= now:
        raise PolicyError(
            f"this freeze ended at {ends_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; there is "
            "nothing to lift"
        )
    return "early" if starts_at < now else "cancel"


STALE_PLAN_MESSAGE = (
    "stale \u2014 re-plan needed: another apply changed the environment since this plan was "
    "made; run a new plan and have it approved"
)


def check_window(
    env: Environment, ticket: Ticket, now: dt.datetime, freezes: Iterable[Any]
) -> None:
    """The one window-and-freeze rule, asked at request time and again by the worker at
    the moment the apply would start. Emergencies and immediate rollbacks (within their
    hour) ignore both."""
    if ignores_window(ticket, now):
        return
    periods = _periods(freezes)
    freeze = frozen_by(now, periods)
    window = Window.of(env)
    lapsed = rollback_lapse_note(ticket, now)
    prefix = f"{lapsed}; " if lapsed else ""
    if freeze is not None:
        zone = env.window_timezone or "UTC"
        raise PolicyError(
            f"{prefix}{env.name} is frozen until {format_in_zone(freeze.ends_at, zone)}"
            f" ({freeze.reason or 'no reason given'}); {describe_next_window(env, now, periods)}"
        )
    if window and not window.contains(now):
        raise PolicyError(
            f"{prefix}{env.name} deploys only inside the change window ({window.describe()}); "
            f"{describe_next_window(env, now, periods)}"
        )


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


def rule_for(ticket: Ticket, *, now: dt.datetime) -> Rule:
    """The approval rule that applies at ``now``: the emergency rule for emergency tickets,
    one lead for an immediate rollback within its hour, replaced by the environment's rule
    for the ticket's risk level when it has one (see risk_rule)."""
    env = ticket.environment
    if is_immediate_rollback(ticket, now):
        return immediate_rollback_rule(env)
    field = _base_rule_field(ticket)
    override = risk_rule(env, _risk_level(ticket), field)
    if override is not None:
        return override
    return Rule.parse(getattr(env, field))


# --- rollback to the last known good deployment (issue 9) ---------------------------
#
# A rollback ticket re-plans and applies the commit and var-file of the environment's last
# known good deployment before the rolled-back ticket's own. Opened within
# ROLLBACK_IMMEDIATE_MINUTES of that deployment it is *immediate*: one Tech Lead or DevOps
# Lead approves it (never its author) and it may deploy outside the window and during a
# freeze. Opened later it is *planned*: the environment's normal rule, windows and freezes.
# Neither needs the staging promotion gate (the commit was in the environment already) nor
# a questionnaire (the portal writes the rollback plan).
#
# The immediate path lasts as long as its hour does: the hour is counted from the end of
# the rolled-back deployment and recorded on the rollback when it is opened
# (``rollback_immediate_until``). Every check (approve, deploy, schedule, the worker's
# start-time re-check) asks ``is_immediate_rollback(ticket, now)``: past that instant the
# rollback follows the planned path, and an approval it got under the one-lead rule no
# longer suffices on its own (it may be completed by the normal rule's other approvers).

ROLLBACK_APPROVER_ROLES = ("devops_lead", "tech_lead")
# Who may open a rollback besides the environment's deployers (operations in prod).
ROLLBACK_LEAD_ROLES = frozenset(ROLLBACK_APPROVER_ROLES)
# Ticket states in which Terraform has changed the environment for the ticket.
ROLLBACK_FROM_STATUSES = frozenset(
    {TicketStatus.MONITORING, TicketStatus.COMPLETED, TicketStatus.APPLY_FAILED}
)


def rollback_mode(
    deployed_at: dt.datetime, opened_at: dt.datetime, *, immediate_minutes: int = 60
) -> str:
    """ "immediate" when the rollback is opened within ``immediate_minutes`` of the
    deployment it undoes (the moment its apply finished; the boundary itself counts),
    else "planned"."""
    return (
        "immediate"
        if opened_at <= rollback_immediate_until(deployed_at, immediate_minutes=immediate_minutes)
        else "planned"
    )


def rollback_immediate_until(deployed_at: dt.datetime, *, immediate_minutes: int) -> dt.datetime:
    """The last instant an immediate rollback of a deployment finished at ``deployed_at``
    is immediate (inclusive)."""
    return deployed_at + dt.timedelta(minutes=immediate_minutes)


def _opened_immediate(ticket: Ticket) -> bool:
    return ticket.change_type == "rollback" and getattr(ticket, "rollback_mode", "") == "immediate"


def is_immediate_rollback(ticket: Ticket, now: dt.datetime) -> bool:
    """Is the ticket an immediate rollback at ``now``: opened as one and still within the
    hour of the deployment it undoes? A rollback without a recorded hour is not."""
    until = getattr(ticket, "rollback_immediate_until", None)
    return _opened_immediate(ticket) and until is not None and now <= until


def rollback_lapsed(ticket: Ticket, now: dt.datetime) -> bool:
    """Was the ticket opened as an immediate rollback whose hour has ended by ``now``?"""
    return _opened_immediate(ticket) and not is_immediate_rollback(ticket, now)


def effective_rollback_mode(ticket: Ticket, now: dt.datetime) -> str:
    """How a rollback is governed at ``now`` ("immediate" or "planned"; "" for others)."""
    if ticket.change_type != "rollback":
        return ""
    return "immediate" if is_immediate_rollback(ticket, now) else "planned"


def rollback_lapse_note(ticket: Ticket, now: dt.datetime) -> str:
    """What a lapsed immediate rollback's page and API say, or ""."""
    if not rollback_lapsed(ticket, now):
        return ""
    until = getattr(ticket, "rollback_immediate_until", None)
    when = f" at {until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if until is not None else ""
    return (
        f"the immediate rollback's hour ended{when}: it now follows the planned path "
        f"({ticket.environment.name}'s normal approval rule, change window and freezes)"
    )


def ignores_window(ticket: Ticket, now: dt.datetime) -> bool:
    """Emergencies and immediate rollbacks (within their hour) may deploy outside the window
    and in a freeze."""
    return ticket.change_type == "emergency" or is_immediate_rollback(ticket, now)


def window_bypass_note(ticket: Ticket, now: dt.datetime) -> str:
    """Why this ticket may deploy outside the window (for the audit trail), or ""."""
    if ticket.change_type == "emergency":
        return "emergency change: windows and freezes do not apply"
    if is_immediate_rollback(ticket, now):
        return (
            "immediate rollback (within the hour of the deployment it undoes): windows and "
            "freezes do not apply"
        )
    return ""


def immediate_rollback_rule(env: Environment) -> Rule:
    """One Tech Lead or DevOps Lead; none where the environment needs no approval (dev)."""
    try:
        needs_approval = Rule.parse(env.approval_rule).required
    except ValueError:
        needs_approval = True
    if not needs_approval:
        return Rule()
    return Rule(any_of=ROLLBACK_APPROVER_ROLES, count=1)


def may_open_rollback(env: Environment, user_roles: Iterable[str], *, superuser: bool) -> bool:
    return superuser or _holds_any(user_roles, set(env.deploy_groups) | ROLLBACK_LEAD_ROLES)


@dataclass(frozen=True)
class RollbackFacts:
    """What the rollback rule needs to know about a ticket, read by the selectors."""

    deployed: bool  # Terraform applied something for it (a Deployment record exists)
    target_ticket_id: int | None  # the last known good deployment's ticket, if any
    open_rollback_id: int | None  # a rollback of this ticket that is not finished
    newer_ticket_id: int | None  # a later good deployment of the environment, if any


def check_may_roll_back(
    ticket: Ticket,
    facts: RollbackFacts,
    *,
    user_roles: Iterable[str],
    superuser: bool = False,
) -> None:
    """May this person open a rollback of the ticket now? 403 for the wrong person, 409
    (naming the reason) when there is nothing, or nothing safe, to return to."""
    env = ticket.environment
    if not may_open_rollback(env, user_roles, superuser=superuser):
        who = sorted({*env.deploy_groups, *ROLLBACK_LEAD_ROLES})
        raise PolicyError(
            f"{env.name} rollbacks are opened by {' or '.join(role_label(r) for r in who)}",
            PolicyError.ACTOR,
        )
    if ticket.change_type == "rollback":
        raise PolicyError(
            "a rollback ticket is not rolled back itself; file a normal ticket for the commit "
            "you want deployed"
        )
    status = TicketStatus(ticket.status)
    if facts.open_rollback_id is not None:
        raise PolicyError(
            f"a rollback of this ticket is already open: ticket #{facts.open_rollback_id}",
            data={"rollback": facts.open_rollback_id},
        )
    if status not in ROLLBACK_FROM_STATUSES or not facts.deployed:
        raise PolicyError(
            f"only a deployed ticket (monitoring, completed, or apply failed after Terraform "
            f"changed the environment) can be rolled back; this one is {status.label.lower()}"
            + ("" if facts.deployed else " and was never deployed")
        )
    if facts.newer_ticket_id is not None:
        raise PolicyError(
            f"ticket #{facts.newer_ticket_id} deployed to {env.name} after this one; roll that "
            "one back first (a rollback returns the whole environment to an earlier state)"
        )
    if facts.target_ticket_id is None:
        raise PolicyError(
            f"there is no earlier good deployment of {env.name} to return to (none succeeded "
            "before this one without being rolled back or failing its monitoring)"
        )


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


def check_deployer(env: Environment, user_roles: Iterable[str], doing: str) -> None:
    """Deploying and scheduling belong to the environment's deploy_groups; the refusal
    names them ("prod deploys are done by Operations")."""
    if not _holds_any(user_roles, env.deploy_groups):
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
    freezes: Iterable[Any] = (),
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
    try:
        check_window(env, ticket, now, freezes)
    except PolicyError as exc:
        raise ApplyRefused(
            f"{exc.message} (checked when the apply would have started, "
            f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC); deploy again inside the window",
            TicketStatus.APPROVED,
        ) from None
    rule = rule_for(ticket, now=now)
    if not rule.required or env.auto_deploy:
        return
    counted = [v for v in votes if v.roles and v.approver_id != ticket.author_id]
    dropped = [v.approver_name for v in votes if v not in counted]
    state = quorum(rule, counted)
    if state.met and not stray_approvals:
        return
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


# --- required CI checks ----------------------------------------------------------

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


# --- emergencies and follow-ups (issue 7; post-mortems of issue 9 reuse them) -------------

# Who completes a post-deployment review or a post-mortem.
FOLLOW_UP_ROLES = frozenset({"tech_lead", "devops_lead"})
# An emergency deploy leaves a post-deployment review due this long after the deployment.
EMERGENCY_REVIEW_DUE = dt.timedelta(hours=24)
# An overdue follow-up is re-notified at most this often.
FOLLOW_UP_REMIND_EVERY = dt.timedelta(hours=24)


def is_emergency(ticket: Ticket) -> bool:
    return ticket.change_type == "emergency"


def emergency_notify_roles(env: Environment) -> frozenset[str]:
    """Who is told at once when an emergency is filed: whoever may approve it."""
    return _rule_roles(env.emergency_approval_rule)


# Who sees the notification log (/notifications/) and may retry a failed notification.
NOTIFICATION_LOG_ROLES = frozenset({"operations", "tech_lead", "devops_lead", "lead_developer"})


def may_see_notification_log(user_roles: Iterable[str], *, superuser: bool = False) -> bool:
    return superuser or _holds_any(user_roles, NOTIFICATION_LOG_ROLES)


def check_may_see_notification_log(user_roles: Iterable[str], *, superuser: bool = False) -> None:
    if not may_see_notification_log(user_roles, superuser=superuser):
        raise PolicyError(
            "only Operations and leads see the notification log and retry failed notifications",
            PolicyError.ACTOR,
        )


def may_complete_follow_ups(user_roles: Iterable[str], *, superuser: bool = False) -> bool:
    """Whether this person may complete follow-ups (the form is offered to them)."""
    return superuser or _holds_any(user_roles, FOLLOW_UP_ROLES)


def check_may_complete_follow_up(
    *, done: bool, kind_label: str, user_roles: Iterable[str], superuser: bool = False
) -> None:
    """A Tech Lead or DevOps Lead completes a follow-up, once."""
    if not superuser and not _holds_any(user_roles, FOLLOW_UP_ROLES):
        raise PolicyError(
            f"a {kind_label.lower()} is completed by a Tech Lead or a DevOps Lead",
            PolicyError.ACTOR,
        )
    if done:
        raise PolicyError(f"this {kind_label.lower()} is already completed")


def follow_up_overdue(
    *, due_at: dt.datetime, done_at: dt.datetime | None, now: dt.datetime
) -> bool:
    return done_at is None and now >= due_at


def follow_up_reminder_due(
    *,
    due_at: dt.datetime,
    done_at: dt.datetime | None,
    last_reminded_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Overdue, and not reminded in the last day."""
    if not follow_up_overdue(due_at=due_at, done_at=done_at, now=now):
        return False
    return last_reminded_at is None or now - last_reminded_at >= FOLLOW_UP_REMIND_EVERY


# --- scheduling ------------------------------------------------------------------


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
    periods = _periods(freezes)
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


# --- testing evidence, QA sign-off and the promotion gate ------------------------------
#
# Who may do what with evidence (SPEC §5 "Only QA may upload qa_report or sign evidence off
# as passed"): anyone who can see a ticket may attach screenshots, smoke-test results and
# other files to it, unreviewed or as failed (CI reports a red smoke-test run itself); only
# QA uploads a qa_report, and only QA gives a verdict of passed, at upload or by signing an
# item off. A sign-off is given once per item: a new verdict needs a new upload.
#
# When evidence is taken (issue 16): while the ticket can still use it. Before and while it
# deploys (evidence may be prepared ahead; a verdict counts only once given after the apply
# it validates, see verdict_counts), while it is monitoring (QA's window) and after a failed
# apply (what went wrong, before it is planned again). Not once it is completed (its
# evidence is part of its record and, in staging, the promotion gate's proof), cancelled or
# rejected (it will never deploy) or rolled back (its post-mortem says what happened).
# Quotas bound what one ticket and one person may store; an uploader or QA may withdraw a
# file the ticket has not finished with (its verdict stops counting at once; the bytes stay
# until EVIDENCE_WITHDRAWN_RETENTION_DAYS have passed).

QA_ROLE = "qa"
# The passed evidence that completes a staging ticket and lets its commit go to prod.
SIGNOFF_KINDS = ("smoke_tests", "qa_report")
SIGNOFF_KIND_LABELS = {"smoke_tests": "passed smoke_tests", "qa_report": "passed qa_report"}
EVIDENCE_CLOSED_STATUSES = {
    TicketStatus.COMPLETED: "it is completed: its evidence is part of its record",
    TicketStatus.CANCELLED: "it was cancelled and will never deploy",
    TicketStatus.REJECTED: "it was rejected and will never deploy",
    TicketStatus.ROLLED_BACK: "it was rolled back: its post-mortem records what happened",
}
_NO_EVIDENCE_STATUSES = frozenset(EVIDENCE_CLOSED_STATUSES)
# A withdrawn file is one the ticket has not finished with: not once it is completed or
# rolled back (the record of a finished change keeps its evidence).
_EVIDENCE_KEPT_STATUSES = frozenset({TicketStatus.COMPLETED, TicketStatus.ROLLED_BACK})


def _evidence_closed(status: TicketStatus, what: str) -> PolicyError:
    return PolicyError(
        f"a ticket that is {status.label.lower()} takes no more {what}: "
        f"{EVIDENCE_CLOSED_STATUSES[status]}"
    )


@dataclass(frozen=True)
class EvidenceUse:
    """What the quotas count (withdrawn files never count)."""

    ticket_files: int
    ticket_bytes: int
    user_bytes_today: int  # the uploader's, across tickets, in the last 24 hours


@dataclass(frozen=True)
class EvidenceQuota:
    ticket_files: int
    ticket_bytes: int
    user_daily_bytes: int


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def check_evidence_quota(use: EvidenceUse, size: int, quota: EvidenceQuota) -> None:
    """Would one more file of ``size`` bytes exceed a quota? Refused (409) naming it."""
    if use.ticket_files + 1 > quota.ticket_files:
        raise PolicyError(
            f"this ticket already holds {use.ticket_files} evidence files, its quota "
            f"(EVIDENCE_TICKET_MAX_FILES = {quota.ticket_files}); withdraw one it no longer "
            "needs first"
        )
    if use.ticket_bytes + size > quota.ticket_bytes:
        raise PolicyError(
            f"this file ({_size(size)}) would take the ticket's evidence to "
            f"{_size(use.ticket_bytes + size)}, over its quota of {_size(quota.ticket_bytes)} "
            "(EVIDENCE_TICKET_MAX_BYTES); withdraw files it no longer needs first"
        )
    if use.user_bytes_today + size > quota.user_daily_bytes:
        raise PolicyError(
            f"you uploaded {_size(use.user_bytes_today)} of evidence in the last 24 hours; "
            f"this file ({_size(size)}) would pass your quota of "
            f"{_size(quota.user_daily_bytes)} a day (EVIDENCE_USER_DAILY_BYTES)"
        )


def check_may_withdraw_evidence(
    ticket: Ticket,
    *,
    user_id: int,
    user_roles: Iterable[str],
    uploaded_by_id: int,
    withdrawn: bool,
) -> None:
    """May this person withdraw the file? Its uploader or QA, once, while the ticket has not
    finished with it (not completed, not rolled back)."""
    if user_id != uploaded_by_id and QA_ROLE not in set(user_roles):
        raise PolicyError(
            "only the person who uploaded a file, or QA, may withdraw it", PolicyError.ACTOR
        )
    if withdrawn:
        raise PolicyError("this file is already withdrawn")
    status = TicketStatus(ticket.status)
    if status in _EVIDENCE_KEPT_STATUSES:
        raise PolicyError(
            f"a ticket that is {status.label.lower()} keeps its evidence: "
            f"{EVIDENCE_CLOSED_STATUSES[status]}"
        )


def verdict_counts(at: dt.datetime, applied_at: dt.datetime | None) -> bool:
    """Does a verdict given at ``at`` count for the ticket's sign-off? Only one given after
    the apply it validates finished (``applied_at``, the ticket's latest successful apply):
    a verdict from before speaks of a state that was not deployed yet."""
    return applied_at is not None and at >= applied_at


CI_KEY_VERDICT_REFUSAL = (
    "a verdict of passed is a person's act, and this API key has scope 'ci': upload the "
    "evidence without a verdict (or as failed) and QA signs it off on the ticket page or "
    "with a key of scope 'full'"
)


def check_verdict_by_person(*, passed: bool | None, ci_key: bool) -> None:
    """QA's pass is given by a person: never through a key scoped to CI (403)."""
    if passed is True and ci_key:
        raise PolicyError(CI_KEY_VERDICT_REFUSAL, PolicyError.ACTOR)


def check_may_upload_evidence(
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    kind: str,
    passed: bool | None,
    ci_key: bool = False,
) -> None:
    """May someone who can see the ticket attach evidence of this kind and verdict?
    ``ci_key``: the request came with an API key of scope ``ci`` (a machine, not QA)."""
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise _evidence_closed(status, "evidence")
    check_verdict_by_person(passed=passed, ci_key=ci_key)
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
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    signed_off_by: str = "",
    verdict: bool | None = None,
    reported_by: str = "",
    ci_key: bool = False,
) -> None:
    """May this person give an item its QA verdict? QA only, once per item: an item that
    already carries a verdict (a failure CI reported at upload) keeps it; a new verdict
    needs new evidence. Never through a key scoped to CI."""
    if ci_key:
        raise PolicyError(
            "a sign-off is a person's act, and this API key has scope 'ci': QA signs evidence "
            "off on the ticket page or with a key of scope 'full'",
            PolicyError.ACTOR,
        )
    if QA_ROLE not in set(user_roles):
        raise PolicyError("only QA may sign evidence off", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise _evidence_closed(status, "sign-offs")
    if signed_off_by:
        raise PolicyError(
            f"{signed_off_by} already signed this evidence off; upload new evidence for a new "
            "verdict"
        )
    if verdict is not None:
        raise PolicyError(
            f"{reported_by or 'its uploader'} already reported this evidence "
            f"{'passed' if verdict else 'failed'}; upload new evidence for a new verdict"
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


# --- the monitoring period, the post-deployment checklist and completion (issue 9) ------
#
# After a deploy to an environment with monitoring_minutes (prod: 60) the ticket stays
# monitoring for that long while the portal probes CloudWatch alarms and health URLs.
# Operations signs each checklist item off with a note (or a passing health check signs the
# items that name it); operations completes the ticket once the period is over, every item
# is signed and no alarm stands. An alarm that fired is either rolled back or, once every
# probe passes again, acknowledged by operations with a note (audited).

OPERATIONS_ROLE = "operations"
CHECKLIST_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CHECKLIST_MAX_ITEMS = 50


@dataclass(frozen=True)
class HealthCheck:
    """One health-check URL: a GET must answer below 400, within ``max_latency_ms``."""

    url: str
    max_latency_ms: int | None = None


@dataclass(frozen=True)
class ChecklistSpec:
    """One configured checklist item (Environment.checklist)."""

    key: str
    label: str
    auto: str = ""  # a health-check URL whose passing probe signs it


def parse_health_checks(value: Any) -> list[HealthCheck]:
    """Health checks from a list of URLs or {"url", "max_latency_ms"}; ValueError if bad."""
    if not isinstance(value, list):
        raise ValueError('health checks must be a list of URLs or {"url", "max_latency_ms"}')
    out: list[HealthCheck] = []
    for entry in value:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or set(entry) - {"url", "max_latency_ms"}:
            raise ValueError(
                'each health check is a URL or {"url": ..., "max_latency_ms": ...}, not '
                f"{entry!r}"
            )
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]{1,490}$", url):
            raise ValueError(f"a health check URL must start with http:// or https://: {url!r}")
        latency = entry.get("max_latency_ms")
        if latency is not None and (
            not isinstance(latency, int) or isinstance(latency, bool) or latency < 1
        ):
            raise ValueError(f"max_latency_ms must be a positive integer: {latency!r}")
        out.append(HealthCheck(url=url, max_latency_ms=latency))
    return out


def merge_health_checks(*sources: Sequence[HealthCheck]) -> list[HealthCheck]:
    """The union by URL, the first source's latency limit winning."""
    seen: dict[str, HealthCheck] = {}
    for source in sources:
        for check in source:
            seen.setdefault(check.url, check)
    return list(seen.values())


def parse_checklist(value: Any, health_urls: Iterable[str]) -> list[ChecklistSpec]:
    """Checklist items [{"key", "label", "auto"?}]; ``auto`` must name a health-check URL."""
    if not isinstance(value, list) or len(value) > CHECKLIST_MAX_ITEMS:
        raise ValueError(
            f'the checklist is a list of at most {CHECKLIST_MAX_ITEMS} {{"key", "label", '
            '"auto"}} items'
        )
    urls = set(health_urls)
    out: list[ChecklistSpec] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"key", "label", "auto"}:
            raise ValueError(f'each checklist item is {{"key", "label", "auto"?}}, not {entry!r}')
        key, label, auto = entry.get("key"), entry.get("label"), entry.get("auto") or ""
        if not isinstance(key, str) or not CHECKLIST_KEY_RE.match(key):
            raise ValueError(
                f"a checklist key is lower-case letters, digits, - and _ (at most 64): {key!r}"
            )
        if any(item.key == key for item in out):
            raise ValueError(f"checklist key {key!r} appears twice")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ValueError(f"checklist item {key!r} needs a label of at most 200 characters")
        if not isinstance(auto, str) or (auto and auto not in urls):
            raise ValueError(
                f"checklist item {key!r}: auto must be one of the environment's health-check "
                f"URLs, not {auto!r}"
            )
        out.append(ChecklistSpec(key=key, label=label.strip(), auto=auto))
    return out


def monitors(env: Environment) -> bool:
    """Does a deploy here start a monitoring period (with its checklist)? Environments that
    deploy by themselves (dev) run a post-apply check instead."""
    return env.monitoring_minutes > 0 and not env.auto_deploy


def _is_operations(user_roles: Iterable[str], superuser: bool) -> bool:
    return superuser or OPERATIONS_ROLE in set(user_roles)


def check_may_sign_checklist(
    ticket: Ticket, *, user_roles: Iterable[str], signed_by: str, superuser: bool = False
) -> None:
    """Operations signs an open item of a monitoring ticket, once."""
    if not _is_operations(user_roles, superuser):
        raise PolicyError("only operations may sign checklist items off", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(
            "checklist items are signed while the ticket is monitoring; it is "
            f"{status.label.lower()}"
        )
    if signed_by:
        raise PolicyError(f"this item is already signed off by {signed_by}")


@dataclass(frozen=True)
class OpenItem:
    """A checklist item as completion sees it."""

    label: str
    signed: bool


@dataclass(frozen=True)
class Alarm:
    """A fired alarm of the monitoring period, as completion sees it."""

    at: dt.datetime
    reason: str
    acknowledged: bool


def check_may_complete(
    ticket: Ticket,
    items: Sequence[OpenItem],
    alarms: Sequence[Alarm],
    now: dt.datetime,
    *,
    ends_at: dt.datetime | None,
    user_roles: Iterable[str] | None = None,
    superuser: bool = False,
) -> None:
    """May operations complete the ticket now? Every reason it may not, in one sentence."""
    if user_roles is not None and not _is_operations(user_roles, superuser):
        raise PolicyError("only operations may complete a ticket", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(f"a ticket that is {status.label.lower()} cannot be completed")
    if ticket.environment.auto_deploy:
        raise PolicyError(
            f"{ticket.environment.name} tickets complete when the post-apply check passes"
        )
    if ticket.environment.requires_qa_signoff:
        raise PolicyError(
            f"{ticket.environment.name} tickets complete when QA signs off the smoke tests "
            "and the QA report"
        )
    reasons: list[str] = []
    if ends_at is not None and now < ends_at:
        left = ends_at - now
        left_text = _duration(left) if left >= dt.timedelta(minutes=1) else "less than a minute"
        reasons.append(
            f"the monitoring period runs until {ends_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC "
            f"({left_text} left)"
        )
    open_items = [item.label for item in items if not item.signed]
    if open_items:
        reasons.append(
            f"{len(open_items)} checklist item{'s are' if len(open_items) != 1 else ' is'} "
            f"still open: {', '.join(open_items)}"
        )
    standing = [alarm for alarm in alarms if not alarm.acknowledged]
    if standing:
        first = standing[0]
        reasons.append(
            f"an alarm fired at {first.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({first.reason}): "
            "roll back, or once every probe passes again operations acknowledges the alarm "
            "with a note"
        )
    if reasons:
        raise PolicyError("cannot complete yet: " + "; ".join(reasons))


def check_may_acknowledge_alarm(
    ticket: Ticket,
    alarm: Alarm | None,
    failing: Sequence[str],
    *,
    user_roles: Iterable[str],
    superuser: bool = False,
) -> None:
    """Operations acknowledges an alarm that fired, once every probe passes again."""
    if not _is_operations(user_roles, superuser):
        raise PolicyError("only operations may acknowledge an alarm", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(f"a ticket that is {status.label.lower()} has no alarm to acknowledge")
    if alarm is None:
        raise PolicyError("no alarm fired during this monitoring period")
    if alarm.acknowledged:
        raise PolicyError("this alarm is already acknowledged")
    if failing:
        raise PolicyError(
            f"still failing: {', '.join(failing)}; roll back, or acknowledge once the probes pass"
        )
