"""The ticket detail's review fields: its timeline, and the plan's changes with their
attributes before → after (values masked by the worker; selectors.review)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments.selectors.review import PlanReview
from deployments.selectors.timeline import TimelineStep


class TimelineStepSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(
        help_text="filed, planned, checks, approvals, scheduled, applied, monitoring, end"
    )
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    state = serializers.ChoiceField(choices=["done", "current", "pending", "failed", "skipped"])
    who = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True, help_text="How long the step took.")
    detail = serializers.CharField()


class AttributeChangeSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    before = serializers.CharField(
        allow_null=True, help_text='Masked: "(sensitive value)"; null when absent.'
    )
    after = serializers.CharField(
        allow_null=True, help_text='"(known after apply)" when unknown until apply.'
    )
    forces_replacement = serializers.BooleanField()


class PlanChangeSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    module = serializers.CharField()
    action = serializers.ChoiceField(
        choices=["destroy", "replace", "forget", "update", "create", "import", "move"]
    )
    destructive = serializers.BooleanField()
    previous_address = serializers.CharField()
    importing = serializers.BooleanField()
    attributes = AttributeChangeSerializer(many=True)
    more_attributes = serializers.IntegerField()


def timeline_out(steps: list[TimelineStep]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "label": s.label,
            "state": s.state,
            "who": s.who,
            "at": s.at,
            "seconds": s.took.total_seconds() if s.took is not None else None,
            "detail": s.detail,
        }
        for s in steps
    ]


def plan_changes_out(review: PlanReview | None) -> list[dict[str, Any]]:
    """Destructive changes first, then by module (the page's order)."""
    if review is None:
        return []
    return [
        {
            "address": c.address,
            "module": c.module,
            "action": c.action,
            "destructive": c.destructive,
            "previous_address": c.previous_address,
            "importing": c.importing,
            "attributes": [
                {
                    "path": r.get("path", ""),
                    "before": r.get("before"),
                    "after": r.get("after"),
                    "forces_replacement": bool(r.get("forces_replacement")),
                }
                for r in c.rows
            ],
            "more_attributes": c.more,
        }
        for g in review.groups
        for c in g.changes
    ]
