"""Terraform runs as the API shows them, and a plan's summary."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from deployments import selectors
from deployments.api.shapes import policies
from deployments.api.shapes.common import (
    PlanSummarySerializer,
)
from deployments.models import TerraformRun

# Keys of a plan summary's resource (deployments.terraform.summary) that plans made before
# they existed lack: a moved resource's previous address, an import.
_RESOURCE_DEFAULTS = {"previous_address": "", "importing": False}


_STATE_COUNTS = ("import_count", "move_count", "forget_count", "invoke_count", "drift_count")


def plan_summary_out(run: TerraformRun | None) -> dict[str, Any] | None:
    """The plan's counts and changes: add/change/destroy as Terraform counts them, and what
    changes only Terraform's state (imports, moves, forgets), the actions it invokes and
    the changes Terraform found made outside it (drift, informational)."""
    if run is None or not run.summary:
        return None
    summary = run.summary
    return {
        "add": summary.get("add", 0),
        "change": summary.get("change", 0),
        "destroy": summary.get("destroy", 0),
        **{key: summary.get(key, 0) for key in _STATE_COUNTS},
        "resources": [{**_RESOURCE_DEFAULTS, **r} for r in summary.get("resources") or []],
        "action_invocations": list(summary.get("action_invocations") or []),
        "drift": list(summary.get("drift") or []),
    }


class RunBriefSerializer(serializers.ModelSerializer[TerraformRun]):
    summary = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = TerraformRun
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "exit_code",
            "error",
            "plan",
            "plan_sha256",
            "summary",
            "has_changes",
            "commit_sha",
            "workspace",
            "var_file",
            "terraform_version",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(PlanSummarySerializer(allow_null=True))
    def get_summary(self, run: TerraformRun) -> dict[str, Any] | None:
        return plan_summary_out(run)

    def get_url(self, run: TerraformRun) -> str:
        return reverse("api:run-detail", args=[run.pk])


class RunSerializer(RunBriefSerializer):
    ticket: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    log = serializers.SerializerMethodField(
        help_text="The end of the log: characters log_start to log_size. Earlier pages: "
        "GET /api/v1/runs/{id}/log/?before=<log_start>."
    )
    log_start = serializers.SerializerMethodField()
    log_size = serializers.SerializerMethodField()
    policy_status = serializers.SerializerMethodField()
    policy_results = serializers.SerializerMethodField()

    class Meta(RunBriefSerializer.Meta):
        fields = [
            *RunBriefSerializer.Meta.fields,
            "ticket",
            "log",
            "log_start",
            "log_size",
            "policy_status",
            "policy_results",
        ]

    @policies.run_policy_status_schema
    def get_policy_status(self, run: TerraformRun) -> str | None:
        return policies.run_policy_status(run)

    @policies.run_policy_results_schema
    def get_policy_results(self, run: TerraformRun) -> list[dict[str, Any]]:
        return policies.run_policy_results(run)

    def _page(self, run: TerraformRun) -> selectors.LogPage:
        cached = getattr(run, "_log_page", None)
        if cached is None:
            cached = selectors.run_log_page(run)
            run._log_page = cached  # type: ignore[attr-defined]
        return cached

    def get_log(self, run: TerraformRun) -> str:
        return self._page(run).text

    def get_log_start(self, run: TerraformRun) -> int:
        return self._page(run).start

    def get_log_size(self, run: TerraformRun) -> int:
        return self._page(run).size


class LogPageSerializer(serializers.Serializer[Any]):
    """One page of a run's log: characters ``start`` to ``end`` of ``size``."""

    text = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    size = serializers.IntegerField()
    previous = serializers.CharField(
        allow_null=True, help_text="The page before this one (null at the log's start)."
    )
