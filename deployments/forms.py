"""Browser forms; they collect input and hand it to the same services as the API."""

from __future__ import annotations

from typing import Any

from django import forms

from . import validation
from .choices import ChangeType
from .models import Environment

# Stored as {"notes": text}: leaves room under validation.FIELD_JSON_MAX_CHARS.
NOTES_MAX = 10_000


class TicketForm(forms.Form):
    # Django's CharField already refuses NUL characters; the lengths bound what is stored.
    title = forms.CharField(max_length=validation.TITLE_MAX)
    environment = forms.ChoiceField()
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
    change_type = forms.ChoiceField(choices=ChangeType.choices, initial=ChangeType.NORMAL)
    pull_request_url = forms.URLField(
        label="Pull request URL", required=False, max_length=500, assume_scheme="https"
    )
    risk_assessment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=NOTES_MAX,
        help_text="Required for prod: what could go wrong and how likely it is.",
    )
    rollback_plan = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=NOTES_MAX,
        help_text="Required for prod: how to undo this change.",
    )

    def __init__(self, *args: Any, environments: list[Environment], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["environment"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(env.name, f"{env.display_name} ({env.name})") for env in environments]

    def notes(self, name: str) -> dict[str, str]:
        text = self.cleaned_data.get(name, "").strip()
        return {"notes": text} if text else {}
