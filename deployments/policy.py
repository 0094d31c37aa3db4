"""The rules, as pure functions over (environment or ticket, user, time).

Each refusal is a :class:`PolicyError` whose message is a sentence a person
understands. Nothing here touches the database beyond reading attributes of
the objects it is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
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


class HasGroups(Protocol):
    is_superuser: bool
    username: str


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


def can_view(env: Environment, user_groups: Iterable[str], *, superuser: bool = False) -> bool:
    return superuser or _holds_any(user_groups, env.view_groups)


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


# --- approval rules ------------------------------------------------------------


def describe_rule(rule: dict[str, object]) -> str:
    """A sentence for an approval rule stored as data on the environment."""
    if not rule:
        return "no approval required"
    if "all_of" in rule:
        roles = [str(r) for r in rule["all_of"]]  # type: ignore[attr-defined]
        return " and ".join(_role_label(r) for r in roles) + (
            ", two different people" if len(roles) == 2 else ", different people"
        )
    if "any_of" in rule:
        roles = [str(r) for r in rule["any_of"]]  # type: ignore[attr-defined]
        count = int(rule.get("count", 1))  # type: ignore[call-overload]
        who = " or ".join(_role_label(r) for r in roles)
        return f"{count} approval{'s' if count != 1 else ''} from a {who}"
    return "a custom rule"


def needs_approval(env: Environment) -> bool:
    return bool(env.approval_rule) and not env.auto_deploy


def _role_label(role: str) -> str:
    return role.replace("_", " ").title().replace("Devops", "DevOps").replace("Qa", "QA")
