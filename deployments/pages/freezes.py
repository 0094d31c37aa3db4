"""Freezes, declared and lifted from the environments page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.views.decorators.http import require_POST

from deployments import selectors
from deployments.lib import presentation
from deployments.models import Environment
from deployments.pages.actions import (
    Done,
    page_action,
)
from deployments.pages.schedules import parse_local
from deployments.services import schedules


def _environment_for(request: HttpRequest, name: str) -> Environment:
    """An environment whose policy the user may read, or 404."""
    for env in selectors.environments_visible_to(request.user):
        if env.name == name:
            return env
    raise Http404("No such environment")


def _freezes_of(*, name: str, **_: Any) -> str:
    """Back to the environment's freezes on the environments page."""
    return f"{reverse('environment_list')}#freezes-{name}"


@login_required
@require_POST
@page_action(back=_freezes_of)
def freeze_declare(request: HttpRequest, name: str) -> Done:
    """Declare a freeze; times are the environment's wall clock (datetime-local fields)."""
    env = _environment_for(request, name)
    zone = env.window_timezone or "UTC"
    freeze = schedules.freeze_declare(
        actor=request.user,
        environment=env,
        starts_at=parse_local(request.POST.get("starts_at", ""), zone, field="starts_at"),
        ends_at=parse_local(request.POST.get("ends_at", ""), zone, field="ends_at"),
        reason=request.POST.get("reason", ""),
    )
    return Done(
        f"{env.name} is frozen from {presentation.format_in_zone(freeze.starts_at, zone)} "
        f"until {presentation.format_in_zone(freeze.ends_at, zone)}."
    )


@login_required
@require_POST
@page_action(back=_freezes_of)
def freeze_lift(request: HttpRequest, name: str, fid: int) -> Done:
    """Lift a freeze (ends now, or withdrawn before it starts), saying why."""
    env = _environment_for(request, name)
    if not env.freezes.filter(pk=fid).exists():
        raise Http404("No such freeze")
    kept = schedules.freeze_lift(
        actor=request.user, freeze_id=fid, reason=request.POST.get("reason", "")
    )
    return Done(
        f"The {env.name} freeze is lifted." if kept else f"The {env.name} freeze is withdrawn."
    )
