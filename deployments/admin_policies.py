"""Administration of portal-managed Rego policies (docs/policies.md): each save is a new
version with its SHA-256, audited; never deleted (disable one instead)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from deployments.admin import ReadOnlyAdmin  # admin.py imports this module last
from deployments.choices import Role
from deployments.models import PolicyOverride, PolicyResult, PortalPolicy, PortalPolicyVersion
from deployments.services import InputError
from deployments.services.policies import portal_policy_save
from deployments.terraform.rego import PolicyModule


class PortalPolicyForm(forms.ModelForm[PortalPolicy]):
    environments = forms.JSONField(
        required=False, help_text='Environment names, e.g. ["prod"]; empty for every one.'
    )

    class Meta:
        model = PortalPolicy
        fields = [
            "name",
            "description",
            "source",
            "level",
            "environments",
            "override_role",
            "enabled",
        ]

    def clean_environments(self) -> list[str]:
        value = self.cleaned_data.get("environments") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise forms.ValidationError("a list of environment names")
        return value

    def clean_override_role(self) -> str:
        value = self.cleaned_data.get("override_role") or ""
        if value and value not in Role.values:
            raise forms.ValidationError(f"one of {', '.join(Role.values)}")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        source, name = cleaned.get("source") or "", cleaned.get("name") or ""
        package = PolicyModule(path=name, source=source).package
        if source and package != name:
            self.add_error(
                "source", f"the policy must declare `package {name}` (it declares {package!r})"
            )
        return cleaned


class VersionInline(admin.TabularInline[PortalPolicyVersion, PortalPolicy]):
    model = PortalPolicyVersion
    fields = ("version", "sha256", "level", "environments", "enabled", "saved_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PortalPolicy)
class PortalPolicyAdmin(admin.ModelAdmin[PortalPolicy]):
    form = PortalPolicyForm
    list_display = ("name", "level", "environments", "enabled", "version", "updated_at")
    readonly_fields = ("version", "sha256")
    inlines = [VersionInline]

    def save_model(self, request: HttpRequest, obj: PortalPolicy, form: Any, change: bool) -> None:
        try:
            portal_policy_save(obj, actor=request.user)
        except InputError as exc:  # the form checked the package already
            raise forms.ValidationError(exc.message) from None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Results and overrides are written by the portal's services only.
_ReadOnly = ReadOnlyAdmin


@admin.register(PolicyResult)
class PolicyResultAdmin(_ReadOnly):
    list_display = ("run", "policy", "folder", "source", "level", "outcome", "created_at")
    list_filter = ("outcome", "level", "source")


@admin.register(PolicyOverride)
class PolicyOverrideAdmin(_ReadOnly):
    list_display = ("ticket", "policy", "plan_sha256", "role", "overridden_by", "created_at")
    list_filter = ("role",)
