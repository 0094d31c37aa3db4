"""Input and output shapes of CI check results and pull request metadata."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator, URLValidator
from rest_framework import serializers

from deployments.models import CheckResult, CheckStatus
from deployments.services.checks import CHECK_LOG_MAX, CHECK_SUMMARY_MAX

_NO_NUL = RegexValidator(r"^[^\x00]+$", "must not contain NUL characters")


class CheckCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        max_length=64,
        help_text="The check's name: fmt, validate, security_scan, plan or any slug "
        "(stored lowercase). A later report of the same name supersedes the earlier one.",
        error_messages={"invalid": 'name must be a check name: letters, digits, "-" and "_"'},
    )
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    summary = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=CHECK_SUMMARY_MAX,
        validators=[_NO_NUL],
    )
    url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        validators=[
            URLValidator(schemes=["http", "https"], message="url must be an http or https URL")
        ],
        help_text="Link to the CI job (http or https only).",
    )
    log = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=CHECK_LOG_MAX,
        trim_whitespace=False,
        validators=[_NO_NUL],
        help_text=f"The check's output, at most {CHECK_LOG_MAX} characters; secrets are "
        "redacted before it is stored.",
    )


class CheckUploadSerializer(CheckCreateSerializer):
    """The same report as a multipart form, the log as a file (``curl -F log_file=@out.txt``)."""

    log_file = serializers.FileField(
        required=False,
        help_text=f"The check's output as a UTF-8 text file (instead of `log`), at most "
        f"{CHECK_LOG_MAX} characters; secrets are redacted before it is stored.",
    )


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
