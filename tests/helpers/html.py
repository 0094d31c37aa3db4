"""Reading a page as its reader does: the text without the markup."""

from __future__ import annotations

import html
import re

from django.utils.html import strip_tags


def visible_text(page: str) -> str:
    """The page's text, tags removed, entities decoded, runs of white space as one space."""
    return re.sub(r"\s+", " ", html.unescape(strip_tags(page)))
