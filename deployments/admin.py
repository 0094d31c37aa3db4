"""Administration: environment policy is editable (validated, audited); history is read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from . import services
from .models import Approval, AuditEvent, Environment, Rejection, TerraformRun, Ticket
from .services.environments import environment_save, environment_validate


class EnvironmentForm(forms.ModelForm[Environment]):
    class Meta:
        model = Environment
        fields = [
            "name",
            "display_name",
            "position",
            "purpose",
            "workspace",
            "var_file",
            "approval_rule",
            "emergency_approval_rule",
            "auto_deploy",
            "deploy_on_merge",
            "window_timezone",
            "window_days",
            "window_start",
            "window_end",
            "monitoring_minutes",
            "view_groups",
            "file_groups",
            "deploy_groups",
            "requires_change_details",
            "requires_staging_evidence",
            "requires_qa_signoff",
            "step_up_auth",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        candidate = self.instance
        for name, value in cleaned.items():
            setattr(candidate, name, value)
        try:
            environment_validate(candidate)
        except services.InputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin[Environment]):
    form = EnvironmentForm
    list_display = (
        "name",
        "display_name",
        "approval_rule",
        "auto_deploy",
        "window_days",
        "window_start",
        "window_end",
        "deploy_groups",
    )

    def save_model(self, request: HttpRequest, obj: Environment, form: Any, change: bool) -> None:
        environment_save(actor=request.user, env=obj, changed=list(form.changed_data))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """History is changed only by the portal's services, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "environment", "status", "author", "created_at")
    list_filter = ("environment", "status", "change_type")
    search_fields = ("title", "commit_sha")


@admin.register(TerraformRun)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "kind", "status", "exit_code", "started_at", "finished_at")
    list_filter = ("kind", "status", "environment")
    # The log can be long; the plan file holds secrets and must never be linked.
    exclude = ("log", "plan_file")


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "approver", "role", "plan_run", "created_at", "voided_at")


@admin.register(Rejection)
class RejectionAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "rejected_by", "created_at")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "actor_name", "action", "ticket")
    list_filter = ("action",)
