"""Browser forms; they collect input and hand it to the same services as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from deployments.choices import ChangeType
from deployments.lib import validation
from deployments.models import Environment, Stack
from deployments.policy import risk


class TicketForm(forms.Form):
    # Django's CharField already refuses NUL characters; the lengths bound what is stored.
    title = forms.CharField(
        max_length=validation.TITLE_MAX,
        validators=[RegexValidator(validation.LINE_PATTERN, f"Title {validation.LINE_PROBLEM}.")],
    )
    environment = forms.ChoiceField()
    stack = forms.ChoiceField(
        required=False,
        help_text="The Terraform root this change is to (docs/stacks.md); required when "
        "there are several.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=validation.DESCRIPTION_MAX,
    )
    commit_sha = forms.CharField(
        label="Commit SHA",
        max_length=64,
        required=False,
        help_text="40-hex commit of the infrastructure repository; empty means the tip of main.",
    )
    # Rollbacks are opened from the ticket they roll back, never filed here.
    change_type = forms.ChoiceField(
        choices=[c for c in ChangeType.choices if c[0] != ChangeType.ROLLBACK],
        initial=ChangeType.NORMAL,
    )
    pull_request_url = forms.URLField(
        label="Pull request URL", required=False, max_length=500, assume_scheme="https"
    )
    # The prod-only part (environments with requires_change_details): the risk
    # questionnaire and the rollback plan, checked by deployments.policy.risk like the API's.
    risk_impact = forms.ChoiceField(
        label="Impact",
        choices=[("", "—"), ("low", "Low"), ("medium", "Medium"), ("high", "High")],
        required=False,
    )
    risk_likelihood = forms.ChoiceField(
        label="Likelihood",
        choices=[("", "—"), ("low", "Low"), ("medium", "Medium"), ("high", "High")],
        required=False,
    )
    risk_summary = forms.CharField(
        label="Risk summary",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=risk.SUMMARY_MAX,
        help_text="What could go wrong, and how you would notice.",
    )
    risk_data_migration = forms.BooleanField(label="Migrates data", required=False)
    risk_downtime_expected = forms.BooleanField(label="Downtime expected", required=False)
    risk_customer_facing = forms.BooleanField(label="Customer-facing", required=False)
    risk_tested_in_staging = forms.BooleanField(label="Tested in staging", required=False)
    rollback_steps = forms.CharField(
        label="Rollback steps",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=risk.STEPS_MAX,
    )
    rollback_expected_minutes = forms.IntegerField(
        label="Expected rollback time (minutes)",
        required=False,
        min_value=0,
        max_value=risk.EXPECTED_MINUTES_MAX,
    )
    rollback_data_considerations = forms.CharField(
        label="Data considerations",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=risk.DATA_CONSIDERATIONS_MAX,
    )

    def __init__(
        self,
        *args: Any,
        environments: list[Environment],
        stacks: list[Stack] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["environment"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(env.name, f"{env.display_name} ({env.name})") for env in environments]
        stack_field = self.fields["stack"]
        assert isinstance(stack_field, forms.ChoiceField)
        stacks = stacks or []
        stack_field.required = len(stacks) > 1
        stack_field.choices = ([("", "Choose a stack")] if len(stacks) > 1 else []) + [
            (s.name, f"{s.name}: {s.description}" if s.description else s.name) for s in stacks
        ]
        self.details_envs = {env.name for env in environments if env.requires_change_details}

    # What an environment with requires_change_details needs, each with its error in plain
    # words (shown under the field, before the service is even asked).
    DETAIL_REQUIRED = {
        "description": "Describe the change: what it does and why.",
        "risk_impact": "Choose the impact if this change goes wrong.",
        "risk_likelihood": "Choose how likely it is to go wrong.",
        "risk_summary": "Say what could go wrong and how you would notice.",
        "rollback_steps": "Write the steps that undo this change.",
    }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("environment") in self.details_envs:
            for name, message in self.DETAIL_REQUIRED.items():
                value = data.get(name)
                if name not in self.errors and not (isinstance(value, str) and value.strip()):
                    self.add_error(name, message)
        return data

    PROD_FIELDS = (
        *(f"risk_{name}" for name in risk.RISK_FIELDS),
        *(f"rollback_{name}" for name in risk.ROLLBACK_FIELDS),
    )

    def risk_assessment(self) -> dict[str, Any] | None:
        """The questionnaire as the API takes it, or None when nothing of it was filled."""
        data = self.cleaned_data
        answers = {name: data.get(f"risk_{name}") for name in risk.RISK_FIELDS}
        return answers if any(answers.values()) else None

    def rollback_plan(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        answers = {name: data.get(f"rollback_{name}") for name in risk.ROLLBACK_FIELDS}
        if all(v in (None, "") for v in answers.values()):
            return None
        return answers

    def field_for(self, name: str) -> str | None:
        """The form field an InputError's field ("risk_assessment.impact") is about."""
        prefix, _, key = name.partition(".")
        short = {"risk_assessment": "risk", "rollback_plan": "rollback"}.get(prefix)
        if short and key and f"{short}_{key}" in self.fields:
            return f"{short}_{key}"
        if short:
            return f"{short}_impact" if short == "risk" else "rollback_steps"
        return name if name in self.fields else None

    def plain_error(self, name: str, message: str) -> str:
        """A service's message about ``risk_assessment.summary`` as the form words it:
        "Risk summary is required" (the field's label, never the API's key); other
        messages are shown as they are."""
        field = self.field_for(name)
        if field is None or "." not in name:
            return message
        label = self.fields[field].label or field.replace("_", " ").capitalize()
        return f"{label} {message}"
