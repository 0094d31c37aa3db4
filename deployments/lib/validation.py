"""Input limits, checked once at the boundary (API parser and serializers, page forms).

Every text and JSON value a person or CI sends passes through here before a service sees
it, so nothing that a later read cannot render (a lone surrogate, a NUL byte that
PostgreSQL refuses, a structure nested deeper than the encoder recurses) is ever stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class InputError(Exception):
    """Bad input: names the field it is about (maps to HTTP 400, or a form error)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# Documented in the OpenAPI schema and in the API error messages.
TITLE_MAX = 200
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 2_000
URL_MAX = 500
JSON_MAX_DEPTH = 32  # of any request body; objects like risk_assessment get less
# A stack's name (docs/stacks.md): a lowercase slug; fullmatch.
STACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
FIELD_JSON_MAX_DEPTH = 4
FIELD_JSON_MAX_KEYS = 50
FIELD_JSON_MAX_CHARS = 20_000


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored and read back, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Only lone surrogates fail here: JSON's "\udfff" escape decodes to one.
        return "must be valid Unicode text (lone surrogates are not allowed)"
    return None


# What a one-line text (a ticket's title) refuses: C0 and C1 control characters (CR, LF,
# tab, ESC ...), the Unicode line and paragraph separators, and the bidirectional overrides
# that make text read differently from what it is. A title travels into email subjects,
# Slack messages and SNS subjects, where a line break starts a new header or message.
LINE_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
LINE_PATTERN = rf"^[^{LINE_CONTROLS}]*[^\s{LINE_CONTROLS}][^{LINE_CONTROLS}]*$"
LINE_PROBLEM = (
    "must be one line of plain text: no control characters (line breaks, tabs, escapes) "
    "or direction overrides"
)
_LINE_CONTROL_RE = re.compile(f"[{LINE_CONTROLS}]")


def line_problem(value: str) -> str | None:
    """Why ``value`` is not one line of plain text (see LINE_CONTROLS), or None."""
    return LINE_PROBLEM if _LINE_CONTROL_RE.search(value) else None


def one_line(value: str) -> str:
    """``value`` with every control character (LINE_CONTROLS) turned into a space, runs of
    white space folded: for text from elsewhere (a commit subject) that becomes a title."""
    return " ".join(_LINE_CONTROL_RE.sub(" ", value).split())


def clean_text(value: Any, field: str, max_length: int) -> str:
    """The value as storable text, or InputError naming the field."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(field, "must be a string")
    problem = text_problem(value)
    if problem:
        raise InputError(field, problem)
    if len(value) > max_length:
        raise InputError(field, f"must be at most {max_length} characters (got {len(value)})")
    return value


def json_problem(value: Any, max_depth: int) -> str | None:
    """Why a parsed JSON value cannot be stored, or None: depth, and every string and key."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"is nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key)
                    if problem:
                        return f"has a key that {problem}"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"has a string that {problem}"
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            # Beyond a 64-bit integer: SQLite's JSON functions and most clients cannot read it.
            return "has an integer outside the 64-bit range"
        elif isinstance(item, float) and not math.isfinite(item):
            # 1e400 parses as infinity, which JSON (and PostgreSQL's jsonb) cannot hold.
            return "has a number that is not finite"
    return None


def clean_json_object(value: Any, field: str) -> dict[str, Any]:
    """A small JSON object (risk_assessment, rollback_plan), bounded in keys, depth and size."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(field, "must be a JSON object (a dictionary of names to values)")
    if len(value) > FIELD_JSON_MAX_KEYS:
        raise InputError(field, f"must have at most {FIELD_JSON_MAX_KEYS} keys")
    problem = json_problem(value, FIELD_JSON_MAX_DEPTH)
    if problem:
        raise InputError(field, problem)
    size = len(json.dumps(value, ensure_ascii=False))
    if size > FIELD_JSON_MAX_CHARS:
        raise InputError(
            field, f"must be at most {FIELD_JSON_MAX_CHARS} characters as JSON (got {size})"
        )
    return value


def parse_instant(raw: str, field: str) -> Any:
    """ISO 8601 date-time (a missing offset means UTC) or a date (its midnight, UTC), in
    UTC; InputError for anything else, blank included."""
    import datetime as dt

    from django.utils.dateparse import parse_date, parse_datetime

    value = raw.strip()
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is not None:
                moment = dt.datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise InputError(field, "must be an ISO 8601 date-time, e.g. 2026-05-01T09:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows (+23:31).
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise InputError(field, "is out of range once converted to UTC") from None
