"""Shared pieces of the API's input serializers: patterns the schema states, strict objects."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

# What DRF's CharField refuses (NUL characters; text that is only whitespace where a
# value is required), stated as patterns so the schema tells clients before they try.
# DRF skips validators for "" where blank is allowed; "+" keeps the schema's oneOf
# (pattern | empty) exclusive.
NO_NUL = RegexValidator(r"^[^\x00]+$", "must not contain NUL characters")


NOT_BLANK = RegexValidator(
    r"^[^\x00]*[^\x00\s][^\x00]*$", "must contain a visible character and no NUL"
)


HEX40 = r"^[0-9a-fA-F]{40}$"


HEX64 = r"^[0-9a-fA-F]{64}$"


class StrictSerializer(serializers.Serializer[Any]):
    """A nested object whose unknown keys are refused (400 naming them), not ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "must be a JSON object (a dictionary of names to values)"
            )
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: [f"unknown field; use {', '.join(self.fields)}"] for key in unknown}
                )
        return super().to_internal_value(data)
