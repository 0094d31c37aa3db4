"""CI check results and pull request metadata as the API shows them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments.models import CheckResult


class CheckResultSerializer(serializers.ModelSerializer[CheckResult]):
    reported_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = CheckResult
        fields = ["id", "name", "status", "summary", "url", "log", "reported_by", "created_at"]


class PullRequestSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    url = serializers.CharField()
    title = serializers.CharField()
    author = serializers.CharField()
    state = serializers.CharField()
