"""Stacks in the admin (docs/stacks.md): declared through services.stacks.stack_save, so a
dependency cycle is refused on the form naming it and every change is audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from deployments import services
from deployments.models import Stack
from deployments.services.stacks import StackInput, check_graph, clean_stack, stack_save


class StackForm(forms.ModelForm[Stack]):
    class Meta:
        model = Stack
        fields = [
            "name",
            "description",
            "repository",
            "repository_credentials",
            "webhook_secret_env",
            "web_url",
            "branch",
            "root_dir",
            "var_file_pattern",
            "policy_dir",
            "backend_config",
            "require_lock_file",
            "environment_rules",
            "depends_on",
        ]

    def input(self) -> StackInput:
        data = self.cleaned_data
        return StackInput(
            name=data.get("name") or self.instance.name,
            description=data.get("description") or "",
            repository=data.get("repository") or "",
            repository_credentials=data.get("repository_credentials") or "",
            webhook_secret_env=data.get("webhook_secret_env") or "",
            web_url=data.get("web_url") or "",
            branch=data.get("branch") or "",
            root_dir=data.get("root_dir") or "",
            var_file_pattern=data.get("var_file_pattern") or "",
            policy_dir=data.get("policy_dir") or "",
            backend_config=tuple(data.get("backend_config") or ()),
            require_lock_file=bool(data.get("require_lock_file")),
            environment_rules=data.get("environment_rules") or {},
            depends_on=tuple(s.name for s in data.get("depends_on") or ()),
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            clean_stack(self.input())
            check_graph(self.input())
        except services.InputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(Stack)
class StackAdmin(admin.ModelAdmin[Stack]):
    form = StackForm
    list_display = (
        "name",
        "repository",
        "root_dir",
        "var_file_pattern",
        "policy_dir",
        "require_lock_file",
    )
    filter_horizontal = ("depends_on",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name",) if obj is not None else ()  # a rename would be another stack

    def save_model(self, request: HttpRequest, obj: Stack, form: Any, change: bool) -> None:
        saved = stack_save(actor=request.user, data=form.input())
        obj.pk = saved.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """stack_save has set the dependencies (checked for cycles)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
