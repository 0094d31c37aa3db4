"""{% ticket_checks ticket as groups %}: the ticket page's CI checks section."""

from __future__ import annotations

from typing import Any

from django import template

from deployments.check_selectors import checks_for_ticket

register = template.Library()


@register.simple_tag
def ticket_checks(ticket: Any) -> list[dict[str, object]]:
    """Checks grouped by name (required ones first), each with its latest report."""
    return checks_for_ticket(ticket)
