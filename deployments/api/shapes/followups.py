"""Serializers of follow-ups (post-deployment reviews, post-mortems)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

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
