"""Serializers of follow-ups (post-deployment reviews, post-mortems)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from deployments.lib import validation
from deployments.models import FollowUp

_NO_NUL = RegexValidator(r"^[^\x00]*$", "must not contain NUL characters")


class FollowUpSerializer(serializers.ModelSerializer[FollowUp]):
    completed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "kind",
            "due_at",
            "done_at",
            "completed_by",
            "overdue",
            "what_happened",
            "impact",
            "root_cause",
            "actions",
        ]
        read_only_fields = fields

    def get_overdue(self, follow_up: FollowUp) -> bool:
        return follow_up.is_overdue(timezone.now())


def _review_text(name: str, help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=validation.DESCRIPTION_MAX,
        validators=[_NO_NUL],
        help_text=help_text,
        error_messages={
            "required": f"{name} is required",
            "blank": f"{name} must not be empty",
        },
    )


class FollowUpCompleteSerializer(serializers.Serializer[Any]):
    what_happened = _review_text("what_happened", "What happened: the change and its course.")
    impact = _review_text("impact", "Impact on users and systems.")
    root_cause = _review_text("root_cause", "Why the emergency (or the failure) happened.")
    actions = _review_text("actions", "Actions agreed, with owners.")
