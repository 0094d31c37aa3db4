"""Administrators edit environment policy; every edit is validated and audited."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from deployments import policy
from deployments.choices import Role
from deployments.models import Environment
from deployments.policy import data_resources
from deployments.policy.incidents import escalating_answers_problem
from deployments.services._base import InputError
from deployments.services.audit import audit_record
from deployments.terraform.source import SourceError, check_relative

ROLE_LIST_FIELDS = ("view_groups", "file_groups", "deploy_groups", "freeze_groups")


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.time) else value


def environment_validate(env: Environment) -> None:
    """Refuse a policy that the portal could not enforce or explain."""
    rules: dict[str, policy.Rule] = {}
    for field in ("approval_rule", "emergency_approval_rule"):
        try:
            rules[field] = policy.Rule.parse(getattr(env, field))
        except ValueError as exc:
            raise InputError(field, str(exc)) from exc
    try:
        policy.parse_risk_rules(env.risk_rules)
    except ValueError as exc:
        raise InputError("risk_rules", str(exc)) from exc
    try:
        data_resources.parse_extra(env.data_resource_types)
    except ValueError as exc:
        raise InputError("data_resource_types", f"data_resource_types: {exc}") from exc
    answers_problem = escalating_answers_problem(env.emergency_escalating_answers)
    if answers_problem:
        raise InputError(
            "emergency_escalating_answers", f"emergency_escalating_answers {answers_problem}"
        )
    for field in ROLE_LIST_FIELDS:
        value = getattr(env, field)
        if not isinstance(value, list) or any(r not in Role.values for r in value):
            raise InputError(field, f"{field} must be a list of roles from {list(Role.values)}")
    if not isinstance(env.window_days, list) or any(
        not isinstance(d, int) or not 1 <= d <= 7 for d in env.window_days
    ):
        raise InputError("window_days", "window_days must be ISO weekdays, 1 (Monday) to 7")
    if env.policy_dir and (env.policy_dir.startswith("/") or ".." in env.policy_dir.split("/")):
        raise InputError("policy_dir", "policy_dir must be a folder inside the repository")
    if (env.window_start is None) != (env.window_end is None):
        raise InputError("window_end", "a change window needs both a start and an end")
    if env.window_start is not None and not env.window_days:
        raise InputError("window_days", "a change window needs at least one day")
    # Contradictions: an environment that deploys by itself cannot also require approvals
    # or a window (today's worker would have applied unapproved, outside the window).
    if env.auto_deploy:
        for field, rule in rules.items():
            if rule.required:
                raise InputError(
                    "auto_deploy",
                    f"auto_deploy cannot be combined with an {field.replace('_', ' ')} "
                    f"({rule.describe()}): approved changes are deployed by a person; "
                    f"turn auto_deploy off or empty {field}",
                )
        if env.window_start is not None or env.window_end is not None:
            raise InputError(
                "auto_deploy",
                "auto_deploy cannot be combined with a change window: an automatic deploy "
                "would not wait for it; turn auto_deploy off or remove the window",
            )
    _validate_monitoring(env)
    _validate_credentials(env)
    problem = policy.required_checks_problem(env.required_checks)
    if problem:
        raise InputError("required_checks", problem)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(env.window_timezone)
    except Exception:
        raise InputError("window_timezone", f"unknown time zone {env.window_timezone!r}") from None
    try:
        check_relative(env.var_file, "var_file")
    except SourceError as exc:
        raise InputError("var_file", str(exc)) from exc


def _validate_credentials(env: Environment) -> None:
    """Names of credential sets and role ARNs; plans never share the apply's credentials."""
    for field in ("plan_credentials", "apply_credentials"):
        problem = policy.credential_set_problem(getattr(env, field))
        if problem:
            raise InputError(field, f"{field}: {problem}")
    for field in ("plan_role_arn", "apply_role_arn"):
        problem = policy.role_arn_problem(getattr(env, field))
        if problem:
            raise InputError(field, f"{field} {problem}")
    for plan_field, apply_field, what in (
        ("plan_credentials", "apply_credentials", "credential set"),
        ("plan_role_arn", "apply_role_arn", "role"),
    ):
        if getattr(env, plan_field) and getattr(env, plan_field) == getattr(env, apply_field):
            raise InputError(
                plan_field,
                f"{plan_field} names the same {what} as {apply_field}: plans get read-only "
                f"credentials, never the apply's; name a read-only {what} for plans",
            )


def _validate_monitoring(env: Environment) -> None:
    """Alarm names, health checks and the checklist (whose auto items name a health URL)."""
    names = env.alarm_names
    if not isinstance(names, list) or any(
        not isinstance(n, str) or not n.strip() or len(n) > 255 for n in names
    ):
        raise InputError("alarm_names", "alarm_names must be a list of CloudWatch alarm names")
    try:
        checks = policy.parse_health_checks(env.health_checks)
    except ValueError as exc:
        raise InputError("health_checks", str(exc)) from exc
    extra = settings.HEALTH_CHECK_URLS.get(env.name, [])
    with contextlib.suppress(ValueError):  # the installation's: reported where it is used
        checks += policy.parse_health_checks(extra)
    try:
        policy.parse_checklist(env.checklist, [c.url for c in checks])
    except ValueError as exc:
        raise InputError("checklist", str(exc)) from exc


def environment_save(*, actor: Any, env: Environment, changed: list[str]) -> Environment:
    """Create or update an environment, recording before and after of each changed field."""
    environment_validate(env)
    with transaction.atomic():
        before = (
            Environment.objects.select_for_update().filter(pk=env.pk).first() if env.pk else None
        )
        env.save()
        if before is None:
            audit_record(
                actor=actor,
                action="environment.create",
                data={"environment": env.name, "approval_rule": env.approval_rule},
            )
            return env
        diff = {
            field: {"from": _jsonable(getattr(before, field)), "to": _jsonable(getattr(env, field))}
            for field in changed
            if getattr(before, field) != getattr(env, field)
        }
        if diff:
            audit_record(
                actor=actor,
                action="environment.update",
                data={"environment": env.name, "changes": diff},
            )
    return env
