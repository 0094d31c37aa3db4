"""Approvals as the API shows them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments.api.shapes.common import (
    NameListField,
)
from deployments.models import Approval


class ApprovalSerializer(serializers.ModelSerializer[Approval]):
    approver: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    void = serializers.BooleanField(source="is_void", read_only=True)
    held_roles = NameListField(read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "approver",
            "role",
            "held_roles",
            "plan_run",
            "plan_sha256",
            "comment",
            "created_at",
            "void",
            "voided_at",
            "void_reason",
        ]
