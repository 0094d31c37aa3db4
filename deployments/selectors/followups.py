"""Follow-ups (post-deployment reviews, post-mortems) of tickets."""

from __future__ import annotations

import datetime as dt

from deployments.models import (
    FollowUp,
    Ticket,
)


def follow_ups_of(ticket: Ticket) -> list[FollowUp]:
    """A ticket's follow-ups, oldest deadline first."""
    return list(FollowUp.objects.filter(ticket=ticket).select_related("completed_by"))


def tickets_with_overdue_follow_ups(ticket_ids: list[int], now: dt.datetime) -> set[int]:
    """Which of these tickets owe a follow-up past its deadline."""
    return set(
        FollowUp.objects.filter(
            ticket_id__in=ticket_ids, done_at__isnull=True, due_at__lte=now
        ).values_list("ticket_id", flat=True)
    )
