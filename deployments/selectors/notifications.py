"""The notification log for Operations and the leads."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from deployments.selectors.access import (
    tickets_visible_to,
)


def notifications_visible_to(
    user: Any, *, status: str = "", event: str = "", channel: str = ""
) -> QuerySet[Any]:
    """The notification log for Operations and leads: rows about tickets they may see (and
    ticketless ones), newest first, with recipient and ticket in the same query."""
    from notifications.models import Notification

    rows = Notification.objects.filter(
        Q(ticket__isnull=True) | Q(ticket__in=tickets_visible_to(user).values("pk"))
    ).select_related("recipient", "ticket")
    if status:
        rows = rows.filter(status=status)
    if event:
        rows = rows.filter(event=event)
    if channel:
        rows = rows.filter(channel=channel)
    return rows.order_by("-created_at", "-id")
