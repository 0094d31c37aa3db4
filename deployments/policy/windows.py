"""Change windows and freezes: when a normal deploy may begin, and who manages freezes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from deployments.lib.presentation import duration, format_in_zone, role_label
from deployments.policy.errors import PolicyError
from deployments.policy.kinds import (
    ignores_window,
    rollback_lapse_note,
)
from deployments.policy.roles import (
    holds_any,
)

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


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


def as_periods(freezes: Iterable[Any]) -> list[Period]:
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
    hits = [p for p in as_periods(freezes) if p.contains(moment)]
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
    periods = as_periods(freezes)
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
    periods = as_periods(freezes)
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


def describe_next_window(env: Environment, now: dt.datetime, freezes: Iterable[Any] = ()) -> str:
    """'the next window opens Thu 26 Nov 02:00 EST (07:00 UTC), in 1 day 4 h'."""
    nxt = next_window(env, now, freezes)
    if nxt is None:
        return "no window opens in the next 400 days"
    zone = env.window_timezone or "UTC"
    return f"the next window opens {format_in_zone(nxt, zone)}, in {duration(nxt - now)}"


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
    return superuser or holds_any(user_roles, freeze_roles(env))


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
            f"{duration(ends_at - starts_at)}: declare a shorter one, and another when it is "
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
    periods = as_periods(freezes)
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
