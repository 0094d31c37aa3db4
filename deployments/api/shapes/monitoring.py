"""Serializers of the monitoring period and the post-deployment checklist."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments.api.shapes.common import FreeFormObjectField
from deployments.models import ChecklistItem, MonitoringCheck
from deployments.selectors.monitoring import Monitoring


class ChecklistItemSerializer(serializers.ModelSerializer[ChecklistItem]):
    signed_by = serializers.SerializerMethodField(
        help_text='Who signed it: a username, "automated check", or null while open.'
    )
    evidence = FreeFormObjectField(
        read_only=True, help_text="What the automated check saw ({} for a person's sign-off)."
    )

    class Meta:
        model = ChecklistItem
        fields = ["key", "label", "signed_by", "signed_at", "note", "auto", "evidence"]
        read_only_fields = fields

    def get_signed_by(self, item: ChecklistItem) -> str | None:
        return item.signer_name or None


class MonitoringCheckSerializer(serializers.ModelSerializer[MonitoringCheck]):
    class Meta:
        model = MonitoringCheck
        fields = ["source", "target", "ok", "detail", "at"]
        read_only_fields = fields


class AlarmSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    reason = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(allow_null=True)
    acknowledge_note = serializers.CharField(allow_blank=True)


class MonitoringSerializer(serializers.Serializer[Any]):
    started_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    remaining_seconds = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["running", "alarm", "acknowledged", "over"])
    last_polled_at = serializers.DateTimeField(allow_null=True)
    alarm = AlarmSerializer(allow_null=True)
    failing = serializers.ListField(child=serializers.CharField())
    checks = MonitoringCheckSerializer(many=True, help_text="The latest 20, newest first.")
    can_complete = serializers.BooleanField()
    complete_blocked = serializers.CharField(allow_blank=True)


def monitoring_out(view: Monitoring) -> dict[str, Any] | None:
    period = view.period
    if period is None:
        return None
    alarm = None
    if period.alarm_at is not None:
        alarm = {
            "at": period.alarm_at.isoformat(),
            "reason": period.alarm_reason,
            "acknowledged_at": period.acknowledged_at.isoformat()
            if period.acknowledged_at
            else None,
            "acknowledged_by": period.acknowledged_by.get_username()
            if period.acknowledged_by
            else None,
            "acknowledge_note": period.acknowledge_note,
        }
    return {
        "started_at": period.started_at.isoformat(),
        "ends_at": period.ends_at.isoformat(),
        "remaining_seconds": view.remaining_seconds,
        "state": view.state,
        "last_polled_at": period.last_polled_at.isoformat() if period.last_polled_at else None,
        "alarm": alarm,
        "failing": view.failing,
        "checks": MonitoringCheckSerializer(view.checks, many=True).data,
        "can_complete": not view.complete_blocked,
        "complete_blocked": view.complete_blocked,
    }
