"""The time the worker's start-time re-check reads.

Production: ``timezone.now()``. Tests only: when settings.PORTAL_TEST_CLOCK_FILE names a file
(set from the env var ``PORTAL_TEST_CLOCK_FILE`` in the worker process started by the
tests), its ISO-8601 content is "now" — so a real worker process sees the instant a
time-machine test travelled to. Refused outside DEBUG/test settings by never being set.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.utils import timezone


def now() -> dt.datetime:
    """The current instant (or the tests' travelled instant, see the module docstring)."""
    path = getattr(settings, "PORTAL_TEST_CLOCK_FILE", "")
    if path:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            text = ""
        if text:
            return dt.datetime.fromisoformat(text)
    return timezone.now()
