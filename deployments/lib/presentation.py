"""How the portal words times, durations, sizes and roles for people: one place, used by the
rules' refusal sentences (policy), the pages, their template filters and the notices."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

from deployments.choices import Role

_ROLE_LABELS = dict(Role.choices)


def duration(delta: dt.timedelta) -> str:
    """'1 day 4 h', '3 h 5 min', '12 min': how long until something, for people."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


# The times a sentence names, noted while it is written (see noting_times).
_noted: contextvars.ContextVar[list[tuple[str, dt.datetime]] | None] = contextvars.ContextVar(
    "noted_times", default=None
)


def format_in_zone(moment: dt.datetime, zone: str) -> str:
    """'Thu 02:00 EST (07:00 UTC)': a window time in its own zone with UTC."""
    local = moment.astimezone(ZoneInfo(zone))
    utc = moment.astimezone(dt.UTC)
    same_day = local.date() == utc.date()
    utc_text = f"{utc:%H:%M} UTC" if same_day else f"{utc:%a %H:%M} UTC"
    text = f"{local:%a %d %b %H:%M %Z} ({utc_text})"
    noted = _noted.get()
    if noted is not None:
        noted.append((text, moment))
    return text


def format_for_reader(moment: dt.datetime, zone: str) -> str:
    """A noted time as a reader in ``zone`` reads it: 'Thu 26 Nov 12:30 IST (07:00 UTC)',
    or 'Thu 26 Nov 07:00 UTC' where the reader's zone is UTC itself. Nothing is noted."""
    local = moment.astimezone(ZoneInfo(zone))
    if local.utcoffset() == dt.timedelta(0):
        return f"{local:%a %d %b %H:%M} UTC"
    token = _noted.set(None)
    try:
        return format_in_zone(moment, zone)
    finally:
        _noted.reset(token)


@contextlib.contextmanager
def noting_times() -> Iterator[list[tuple[str, dt.datetime]]]:
    """Every time the rules write into a sentence meanwhile (format_in_zone), as (text,
    instant): what is stored keeps the environment's zone, and a message re-reads the same
    sentence in each reader's zone (:func:`restamp`)."""
    noted: list[tuple[str, dt.datetime]] = []
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def noted_parts(
    text: str, noted: Sequence[tuple[str, dt.datetime]]
) -> list[tuple[str, dt.datetime | None]]:
    """``text`` cut at each noted time, in one pass (the longest written form first):
    ``(written, instant)`` for a time, ``(text, None)`` between them."""
    moments = dict(noted)
    if not moments:
        return [(text, None)]
    written = re.compile("|".join(re.escape(w) for w in sorted(moments, key=len, reverse=True)))
    parts: list[tuple[str, dt.datetime | None]] = []
    last = 0
    for found in written.finditer(text):
        parts += [(text[last : found.start()], None), (found.group(0), moments[found.group(0)])]
        last = found.end()
    parts.append((text[last:], None))
    return parts


def restamp(
    text: str, noted: Sequence[tuple[str, dt.datetime]], stamp: Callable[[dt.datetime], str]
) -> str:
    """``text`` with each noted time replaced by ``stamp(instant)``."""
    return "".join(
        piece if moment is None else stamp(moment) for piece, moment in noted_parts(text, noted)
    )


def role_label(role: str) -> str:
    """'Tech Lead' for tech_lead (choices.Role); an unknown group name reads as itself."""
    return str(_ROLE_LABELS.get(role, role.replace("_", " ").title()))


def article(label: str) -> str:
    """'a Tech Lead', 'an Operations'."""
    return f"an {label}" if label[:1].upper() in "AEIOU" else f"a {label}"


def file_size(n: int) -> str:
    """'1.5 MiB', '12 KiB', '300 bytes'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def human_label(name: str) -> str:
    """'Smoke tests' for smoke_tests, 'Terraform validate' for terraform-validate: a
    machine name (a CI check's, a checklist key's) as people read it. A single word
    ('fmt', 'plan') and a name that already has capitals or spaces are shown as they are."""
    text = str(name)
    if not text or " " in text or text != text.lower() or not any(c in text for c in "_-"):
        return text
    words = text.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else text
