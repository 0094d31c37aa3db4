"""A schedule kept across a re-plan (issue 22): the slot a scheduled ticket had when it was
re-planned, set again once the new plan is approved (services.replans)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from deployments.models.tickets import Ticket


class PendingReschedule(models.Model):
    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, related_name="pending_reschedule"
    )
    at = models.DateTimeField(help_text="The slot the ticket was scheduled for.")
    # Who scheduled it (told of what happens to the slot; their roles are checked again).
    scheduler = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.ticket_id} to be scheduled again for {self.at:%Y-%m-%d %H:%M}"
