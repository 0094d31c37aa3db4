"""Drift reports of environments."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from deployments.models import (
    DriftCheck,
    Environment,
)


def drift_checks_of(env: Environment, limit: int = 10, stack: str = "") -> list[DriftCheck]:
    """The environment's latest drift reports (of one stack when named), newest first."""
    found = DriftCheck.objects.filter(environment=env)
    if stack:
        found = found.filter(stack__name=stack)
    return list(found.select_related("environment", "stack").order_by("-started_at", "-pk")[:limit])


def latest_drift_by_environment(envs: list[Environment]) -> dict[int, DriftCheck]:
    """Each environment's newest finished drift report (one query, whatever the count)."""
    newest = (
        DriftCheck.objects.filter(environment=OuterRef("environment"), finished_at__isnull=False)
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    rows = DriftCheck.objects.filter(
        environment__in=envs, finished_at__isnull=False, pk=Subquery(newest)
    ).select_related("deployment")
    return {check.environment_id: check for check in rows}
