"""The monitoring period after a deploy: its probes (CloudWatch alarms, health URLs) and the
post-deployment checklist operations work through before completing the ticket."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from deployments.models._base import _choices_check
from deployments.models.tickets import Ticket


class MonitoringPeriod(models.Model):
    """One monitoring period of one ticket (a ticket deployed again gets a new one).

    ``alarm_at`` is set by the first failing probe (an alarm in ALARM, a failing health
    check): people are told once, the deployment stops being anyone's last known good, and
    completion is refused until operations acknowledges it after the probes recovered.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="monitoring_periods")
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # What was probed (copied from the environment and HEALTH_CHECK_URLS at the start).
    alarm_names = models.JSONField(default=list, blank=True)
    alarm_name_prefix = models.CharField(max_length=255, blank=True)
    health_checks = models.JSONField(default=list, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    alarm_at = models.DateTimeField(null=True, blank=True)
    alarm_reason = models.TextField(blank=True)
    # Set when every probe passes again after the alarm (people are told once).
    recovered_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledge_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="monitoring_period_ends")]

    def __str__(self) -> str:
        return f"monitoring of #{self.ticket_id} until {self.ends_at:%Y-%m-%d %H:%M}"


class ProbeSource(models.TextChoices):
    CLOUDWATCH = "cloudwatch", "CloudWatch"
    HTTP = "http", "Health check"


class MonitoringCheck(models.Model):
    """One probe's result. Written when a target's result changes, and as a heartbeat every
    MONITORING_HEARTBEAT_SECONDS while it stays the same (not on every poll)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="monitoring_checks")
    period = models.ForeignKey(MonitoringPeriod, on_delete=models.CASCADE, related_name="checks")
    source = models.CharField(max_length=12, choices=ProbeSource.choices)
    target = models.CharField(max_length=500)
    ok = models.BooleanField()
    detail = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["ticket", "-at"], name="monitoring_check_ticket_at")]
        constraints = [_choices_check("source", ProbeSource, "monitoring_check_source_valid")]

    def __str__(self) -> str:
        return f"{self.source} {self.target}: {'ok' if self.ok else 'failing'}"


class ChecklistItem(models.Model):
    """One post-deployment checklist item of a ticket, signed off by operations with a note or
    by an automated check (``auto``, with the probe's evidence)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="checklist_items")
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    # The health-check URL whose passing probe signs this item automatically ("" = none).
    auto_check = models.CharField(max_length=500, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    auto = models.BooleanField(default=False)
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "key"], name="checklist_item_ticket_key")
        ]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.key}"

    @property
    def signed(self) -> bool:
        return self.signed_at is not None

    @property
    def signer_name(self) -> str:
        if self.signed_at is None:
            return ""
        if self.auto:
            return "automated check"
        return self.signed_by.get_username() if self.signed_by else ""
