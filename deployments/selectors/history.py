"""Deployment history: every finished apply of the environments a person may see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from deployments import policy
from deployments.models import Approval, Deployment, Environment
from deployments.selectors.access import is_superuser, user_roles


def history_environments(user: Any) -> list[Environment]:
    """Environments whose history the user may read: those whose every ticket they see
    (policy.can_view), so prod history stays with those who may see prod."""
    roles = user_roles(user)
    superuser = is_superuser(user)
    return [e for e in Environment.objects.all() if policy.can_view(e, roles, superuser=superuser)]


def history_environment(user: Any, name: str) -> Environment:
    """One environment whose history the user may read, or 404 (existence not disclosed)."""
    env = Environment.objects.filter(name=name).first()
    if env is None or not policy.can_view(env, user_roles(user), superuser=is_superuser(user)):
        raise Http404("No such environment")
    return env


def deployment_history(
    user: Any,
    *,
    environment: Environment | None = None,
    outcome: str = "",
    since: dt.datetime | None = None,
    stack: str = "",
) -> QuerySet[Deployment]:
    """Deployments newest first, with their ticket, deployer, apply run (and so its plan) and
    the approvals of the exact plan applied (``plan_approvals`` on each ticket, filter it by
    ``run.plan_id``, see :func:`approvers_of`): a constant number of queries per page."""
    if environment is not None:
        env_ids = [environment.pk]
    else:
        env_ids = [e.pk for e in history_environments(user)]
    rows = Deployment.objects.filter(environment_id__in=env_ids)
    if stack:
        rows = rows.filter(stack__name=stack)
    if outcome:
        rows = rows.filter(outcome=outcome)
    if since is not None:
        rows = rows.filter(finished_at__gte=since)
    return (
        rows.select_related("environment", "stack", "ticket", "deployed_by", "run", "run__plan")
        .prefetch_related(
            Prefetch(
                "ticket__approvals",
                queryset=Approval.objects.select_related("approver").order_by("created_at", "id"),
                to_attr="plan_approvals",
            )
        )
        .order_by("-finished_at", "-id")
    )


def approvers_of(deployment: Deployment) -> list[Approval]:
    """The approvals given to the very plan this deployment applied."""
    plan_id = deployment.run.plan_id
    return [
        a
        for a in getattr(deployment.ticket, "plan_approvals", [])
        if plan_id is not None and a.plan_run_id == plan_id
    ]
