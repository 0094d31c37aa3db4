"""A counter of committed writes, in the shared cache: what the nav's "waiting for me" badge
compares to know that the number it remembered may have changed (pages.home.badge).

Every write about a ticket appends an audit event with it (services.audit.audit_record),
which bumps the counter once its transaction commits (writes about nothing in a queue, such
as API keys or settings, do not). Reading it is one cache read, no database query."""

from __future__ import annotations

from django.core.cache import cache

KEY = "portal:write-generation"


def note_write() -> None:
    """Something was written (after commit): remembered numbers are out of date."""
    try:
        cache.incr(KEY)
    except ValueError:  # not there yet (or evicted): start it
        if not cache.add(KEY, 1, None):
            cache.incr(KEY)


def write_generation() -> int:
    return int(cache.get(KEY) or 0)
