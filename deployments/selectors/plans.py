"""Reads of speculative plans: seen like tickets, by environment."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from deployments import policy
from deployments.models import SpeculativePlan
from deployments.selectors import environments_viewable_by, user_roles


def speculative_plans_visible_to(user: Any, *, environment: str = "") -> QuerySet[SpeculativePlan]:
    """Speculative plans of the environments whose tickets the user sees (policy.can_view),
    and those the user asked for; newest first."""
    if not getattr(user, "is_authenticated", False):
        return SpeculativePlan.objects.none()
    viewable = [env.pk for env in environments_viewable_by(user)]
    rows = SpeculativePlan.objects.filter(
        Q(environment_id__in=viewable) | Q(requested_by_id=user.pk)
    ).select_related("environment", "requested_by")
    if environment:
        rows = rows.filter(environment__name=environment)
    return rows.order_by("-created_at", "-id")


def speculative_plan_get(user: Any, pk: int | str) -> SpeculativePlan:
    """A speculative plan the user may see, or 404 (existence is not disclosed)."""
    try:
        plan = speculative_plans_visible_to(user).get(pk=pk)
    except (SpeculativePlan.DoesNotExist, ValueError, TypeError):
        raise Http404("No such plan") from None
    superuser = bool(getattr(user, "is_superuser", False))
    if plan.requested_by_id != user.pk and not policy.can_view(
        plan.environment, user_roles(user), superuser=superuser
    ):
        raise Http404("No such plan")
    return plan
