"""Named shapes of the JSON objects the API answers with and CI reads.

These serializers only describe: the views build the same dicts as before (the output is
the contract and does not change), and `@extend_schema_field` points the OpenAPI document
at these shapes, so a generated client gets a typed model instead of a bare object.
Fields a stored row may lack (older plans have no resource type or module) are optional.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.policy import risk


class PlanResourceSerializer(serializers.Serializer[Any]):
    """One resource a plan (or a drift check) would change; no attribute values."""

    address = serializers.CharField()
    type = serializers.CharField(required=False, help_text="The resource type, e.g. null_resource.")
    module = serializers.CharField(
        required=False, allow_blank=True, help_text='Its module address; "" for the root module.'
    )
    action = serializers.CharField(
        help_text="create, update, delete, replace, forget (dropped from state, left running), "
        "create+forget, or no-op for a resource that is only moved or imported"
    )
    previous_address = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='Where a `moved` block moved it from ("" when it did not move).',
    )
    importing = serializers.BooleanField(
        required=False, help_text="Imported into Terraform's state by this plan."
    )


class PlanActionInvocationSerializer(serializers.Serializer[Any]):
    """An action the apply invokes (Terraform 1.14+), e.g. a Lambda function run."""

    address = serializers.CharField(help_text="e.g. action.aws_lambda_invoke.warm_cache")
    type = serializers.CharField()
    trigger = serializers.CharField(
        help_text="The lifecycle event that runs it (after_create, after_update, ...), or "
        "`invoke` for `terraform apply -invoke`."
    )
    resource = serializers.CharField(
        allow_blank=True, help_text="The resource whose event triggers it; empty for -invoke."
    )


class PlanSummarySerializer(serializers.Serializer[Any]):
    """What a saved plan would do: counts and the resources it touches. Imports, moves and
    forgets change only Terraform's state; actions run outside it; drift is what Terraform
    found changed outside it (the apply does not make it). A drift check's summary has
    only the first four fields."""

    add = serializers.IntegerField()
    change = serializers.IntegerField()
    destroy = serializers.IntegerField()
    import_count = serializers.IntegerField(required=False)
    move_count = serializers.IntegerField(required=False)
    forget_count = serializers.IntegerField(required=False)
    invoke_count = serializers.IntegerField(required=False)
    drift_count = serializers.IntegerField(required=False)
    resources = PlanResourceSerializer(many=True)
    action_invocations = PlanActionInvocationSerializer(many=True, required=False)
    drift = PlanResourceSerializer(many=True, required=False)


class ApprovalStatusSerializer(serializers.Serializer[Any]):
    """Who must still approve the ticket under its environment's rule."""

    rule = serializers.CharField(help_text="The rule as a sentence.")
    # A field named like Field.required: DRF's metaclass collects it as a field all the same.
    required = serializers.BooleanField(  # type: ignore[assignment]
        help_text="Does the ticket need any approval?"
    )
    met = serializers.BooleanField(help_text="Do the standing approvals meet the rule?")
    missing = serializers.ListField(
        child=serializers.CharField(), help_text="The roles still needed, one per person."
    )
    missing_text = serializers.CharField(allow_blank=True)
    risk_level = serializers.CharField(
        allow_blank=True, help_text="The scored risk level; empty before the first score."
    )
    risk_note = serializers.CharField(
        allow_blank=True,
        help_text='Why more approvals than usual are needed ("" when the usual rule applies).',
    )
    branch_note = serializers.CharField(
        allow_blank=True,
        help_text="Why an auto-deploy ticket waits for a lead: its commit is not on the "
        "protected branch (\"commit abc123 is not on main: dev applies it only with a lead's "
        'approval …"); "" otherwise.',
    )


class RejectionSerializer(serializers.Serializer[Any]):
    """A rejection of the ticket, with the plan it rejected."""

    rejected_by = serializers.CharField()
    reason = serializers.CharField()
    plan_run = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ChangeWindowSerializer(serializers.Serializer[Any]):
    """When the environment may be deployed, in its own time zone."""

    timezone = serializers.CharField(help_text="An IANA time zone, e.g. America/New_York.")
    days = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7),
        help_text="ISO weekdays, 1 = Monday.",
    )
    start = serializers.CharField(help_text="HH:MM local time.")
    end = serializers.CharField(help_text="HH:MM local time (before start: the next day).")
    text = serializers.CharField(help_text="The window as a sentence.")


class ApprovalRuleSerializer(serializers.Serializer[Any]):
    """An approval rule as stored: every role in all_of (one person each) plus count people
    holding any role in any_of; {} is none."""

    all_of = serializers.ListField(child=serializers.CharField(), required=False)
    any_of = serializers.ListField(child=serializers.CharField(), required=False)
    count = serializers.IntegerField(required=False, min_value=0)


class RiskRuleSerializer(serializers.Serializer[Any]):
    """The rules that replace the environment's own at one risk level."""

    approval_rule = ApprovalRuleSerializer(required=False)
    emergency_approval_rule = ApprovalRuleSerializer(required=False)


@extend_schema_field(ApprovalRuleSerializer)
class ApprovalRuleField(serializers.JSONField):
    """A stored approval rule, output as stored."""


@extend_schema_field(
    serializers.DictField(
        child=RiskRuleSerializer(),
        help_text=f"Keyed by risk level ({', '.join(risk.LEVELS)}): the rules that replace "
        "the environment's own at that level.",
    )
)
class RiskRulesField(serializers.JSONField):
    """The environment's risk rules, output as stored."""


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class NameListField(serializers.JSONField):
    """A stored list of names (roles, groups, checks), output as stored."""


@extend_schema_field(
    {"type": "object", "additionalProperties": True, "description": "Free-form details."}
)
class FreeFormObjectField(serializers.JSONField):
    """A stored JSON object whose keys vary by kind (audit data, probe evidence)."""
