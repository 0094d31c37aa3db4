"""Administration: environment policy is editable (validated, audited); history is read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest
from rest_framework.authtoken.models import TokenProxy

from deployments import policy, selectors, services
from deployments.lib import validation
from deployments.models import (
    ApiKey,
    Approval,
    AuditEvent,
    AuditVerification,
    CheckResult,
    Environment,
    FollowUp,
    Freeze,
    GitHubLogin,
    Rejection,
    TerraformRun,
    Ticket,
    WebhookDelivery,
)
from deployments.services import InputError, accounts
from deployments.services.environments import environment_save, environment_validate
from deployments.services.schedules import freeze_check, freeze_delete, freeze_save


class StorableJSONField(forms.JSONField):
    """A JSON box whose value a later read can render: the API's boundary rules (no NUL,
    no lone surrogate, no non-finite or over-64-bit number, at most JSON_MAX_DEPTH deep)
    give a form error, where Django's own field stores them or raises RecursionError."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(
                f"is nested deeper than {validation.JSON_MAX_DEPTH} levels", code="invalid"
            ) from None
        problem = validation.json_problem(converted, validation.JSON_MAX_DEPTH)
        if problem:
            raise ValidationError(f"this value {problem}", code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-rendering a refused form shows the text as typed, never its parsed value (a
        # lone surrogate cannot be written into the page; deep nesting cannot be parsed).
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
        if data is not None and validation.json_problem(value, validation.JSON_MAX_DEPTH):
            return InvalidJSONInput(data)
        return value


_ENVIRONMENT_JSON_FIELDS = [
    f.name for f in Environment._meta.concrete_fields if f.get_internal_type() == "JSONField"
]


class EnvironmentForm(forms.ModelForm[Environment]):
    class Meta:
        model = Environment
        field_classes = {name: StorableJSONField for name in _ENVIRONMENT_JSON_FIELDS}
        fields = [
            "name",
            "display_name",
            "position",
            "purpose",
            "workspace",
            "var_file",
            "approval_rule",
            "emergency_approval_rule",
            "risk_rules",
            "data_resource_types",
            "emergency_escalating_answers",
            "immediate_rollback_start",
            "auto_deploy",
            "deploy_on_merge",
            "window_timezone",
            "window_days",
            "window_start",
            "window_end",
            "monitoring_minutes",
            "drift_check_minutes",
            "alarm_names",
            "alarm_name_prefix",
            "health_checks",
            "checklist",
            "view_groups",
            "file_groups",
            "deploy_groups",
            "freeze_groups",
            "requires_change_details",
            "requires_staging_evidence",
            "requires_qa_signoff",
            "step_up_auth",
            "required_checks",
            "plan_credentials",
            "apply_credentials",
            "plan_role_arn",
            "apply_role_arn",
            "require_lock_file",
            "allow_provider_network",
            "max_concurrent_applies",
            "policy_dir",
        ]

    def clean_required_checks(self) -> Any:
        """A cleared field means no required checks."""
        return self.cleaned_data.get("required_checks") or []

    def clean_alarm_names(self) -> Any:
        return self.cleaned_data.get("alarm_names") or []

    def clean_health_checks(self) -> Any:
        return self.cleaned_data.get("health_checks") or []

    def clean_checklist(self) -> Any:
        return self.cleaned_data.get("checklist") or []

    def clean_risk_rules(self) -> Any:
        """An empty box means no rules by risk level."""
        return self.cleaned_data.get("risk_rules") or {}

    def clean_data_resource_types(self) -> Any:
        """An empty box means only the built-in table."""
        return self.cleaned_data.get("data_resource_types") or []

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


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    """Full walks of the audit chain (manage.py verify_audit, the nightly task)."""

    list_display = ("at", "ok", "count", "seconds", "source", "bad_event_id")
    list_filter = ("ok", "source")


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    """Reviews and post-mortems are completed on the ticket page (audited), not here."""

    list_display = ("ticket", "kind", "due_at", "done_at", "completed_by", "last_reminded_at")
    list_filter = ("kind", ("done_at", admin.EmptyFieldListFilter))


# --- accounts: role (group) changes and API tokens are audited ---------------------------


def _role_names(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


admin.site.unregister(User)


class GitHubLoginInline(admin.StackedInline[GitHubLogin, User]):
    """The user's GitHub account: pushes by it are filed as this user (nobody else's)."""

    model = GitHubLogin
    fields = ["login"]
    extra = 0
    max_num = 1
    verbose_name = "GitHub login (pushes by this GitHub account are filed as this user)"


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """Users: editing someone's groups (their roles), or their superuser, staff or active
    status, or linking their GitHub login, is recorded in the audit trail."""

    inlines = [GitHubLoginInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not GitHubLogin:
            super().save_formset(request, form, formset, change)
            return
        # Through the audited service, not the formset's own save.
        for inline in formset.forms:
            if not inline.has_changed():
                continue
            deleting = bool(inline.cleaned_data.get("DELETE"))
            login = "" if deleting else str(inline.cleaned_data.get("login") or "")
            accounts.github_login_set(actor=request.user, user=form.instance, login=login)
        # What the admin's change message reads after a formset's own save (the audit
        # trail has the change).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        before = (
            User.objects.filter(pk=obj.pk).values(*accounts.PRIVILEGE_FLAGS).first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        if before is not None:
            accounts.privileges_change_record(actor=request.user, user=obj, before=before)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        user = form.instance
        before = _role_names(user) if change else set()
        super().save_related(request, form, formsets, change)
        after = _role_names(user)
        accounts.roles_change_record(
            actor=request.user, user=user, added=after - before, removed=before - after
        )

    # Deleting someone removes their roles too (only possible for one who never acted: audit
    # events protect the others): recorded like any other role change.
    def delete_model(self, request: HttpRequest, obj: User) -> None:
        with transaction.atomic():
            _roles_lost_record(request, [obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            _roles_lost_record(request, queryset.order_by("username"))
            super().delete_queryset(request, queryset)


def _roles_lost_record(request: HttpRequest, users: Any) -> None:
    for user in users:
        accounts.roles_change_record(
            actor=request.user, user=user, added=[], removed=_role_names(user), via="admin delete"
        )


class GroupForm(forms.ModelForm[Group]):
    """A role with its members, so roles can be granted from the group's side too."""

    users = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("users", is_stacked=False),
        help_text="The people who hold this role.",
    )

    class Meta:
        model = Group
        fields = ["name", "permissions", "users"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["users"].initial = list(self.instance.user_set.all())


admin.site.unregister(Group)


@admin.register(Group)
class AuditedGroupAdmin(GroupAdmin):
    """Roles: adding people to a group or removing them is recorded per person."""

    form = GroupForm

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        group = form.instance
        before = set(group.user_set.all()) if change else set()
        after = set(form.cleaned_data.get("users") or [])
        group.user_set.set(after)
        for user in sorted(after - before, key=lambda u: u.username):
            accounts.roles_change_record(
                actor=request.user, user=user, added=[group.name], removed=[], via="admin group"
            )
        for user in sorted(before - after, key=lambda u: u.username):
            accounts.roles_change_record(
                actor=request.user, user=user, added=[], removed=[group.name], via="admin group"
            )

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        for user in obj.user_set.order_by("username"):
            accounts.roles_change_record(
                actor=request.user, user=user, added=[], removed=[obj.name], via="admin group"
            )
        super().delete_model(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting in bulk would skip the per-person audit: one group at a time.
        return super().has_delete_permission(request, obj) and obj is not None


# DRF's plaintext tokens are replaced by hashed API keys (migration 0015): no new ones here.
admin.site.unregister(TokenProxy)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    """Keys are created on the API tokens page or with create_api_token; here: read, revoke."""

    list_display = [
        "prefix",
        "name",
        "user",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from deployments.services.apikeys import api_key_revoke

        for api_key in queryset:
            api_key_revoke(actor=request.user, key_id=api_key.pk, user=api_key.user)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("delivery_id", "event", "status", "outcome", "ticket", "received_at")
    list_filter = ("event", "status")
    search_fields = ("delivery_id", "outcome")
    exclude = ("payload",)


@admin.register(CheckResult)
class CheckResultAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "name", "status", "reported_by", "created_at")
    list_filter = ("name", "status")


class FreezeForm(forms.ModelForm[Freeze]):
    """The admin's freeze form: the service's rules (who, how long) as form errors."""

    actor: Any = None

    class Meta:
        model = Freeze
        fields = ["environment", "starts_at", "ends_at", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        env, starts, ends = data.get("environment"), data.get("starts_at"), data.get("ends_at")
        if env is not None and starts is not None and ends is not None:
            try:
                freeze_check(actor=self.actor, environment=env, starts_at=starts, ends_at=ends)
            except InputError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            except policy.PolicyError as exc:
                raise ValidationError(exc.message) from None
        return data


@admin.register(Freeze)
class FreezeAdmin(admin.ModelAdmin[Freeze]):
    """Freezes (blackouts): created, changed and lifted through an audited service, by
    those the environment lets (policy.check_may_manage_freezes)."""

    form = FreezeForm
    list_display = ["environment", "starts_at", "ends_at", "reason", "declared_by"]
    list_filter = ["environment"]
    fields = ["environment", "starts_at", "ends_at", "reason"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def _may_manage(self, request: HttpRequest, obj: Freeze | None) -> bool:
        if obj is None:
            return True
        return policy.may_manage_freezes(
            obj.environment,
            selectors.user_roles(request.user),
            superuser=request.user.is_superuser,
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_manage(request, obj)

    def save_model(self, request: HttpRequest, obj: Freeze, form: Any, change: bool) -> None:
        freeze_save(actor=request.user, freeze=obj)

    def delete_model(self, request: HttpRequest, obj: Freeze) -> None:
        try:
            freeze_delete(actor=request.user, freeze=obj)
        except policy.PolicyError as exc:
            raise PermissionDenied(exc.message) from None

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for freeze in queryset:
            self.delete_model(request, freeze)


# The admins of policies (docs/policies.md) and stacks (docs/stacks.md) register themselves.
from deployments import admin_policies, admin_stacks  # noqa: E402, F401
