"""The home page ("what needs me") and the deployment history of an environment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import history_selectors, selectors
from .models import DeploymentOutcome
from .queue_selectors import Queue, queue_for

BADGE_SESSION_KEY = "portal_queue_badge"
HISTORY_PAGE_SIZE = 50


def remember_badge(request: HttpRequest, queue: Queue) -> None:
    """Keep the number for the nav badge in the session (written only when it changes)."""
    value = {"n": queue.waiting, "at": queue.now.timestamp()}
    stored = request.session.get(BADGE_SESSION_KEY)
    if not stored or stored.get("n") != value["n"]:
        request.session[BADGE_SESSION_KEY] = value
    request._portal_queue = queue  # type: ignore[attr-defined]


def badge(request: HttpRequest) -> int | None:
    """The nav badge: the home page's own count, else the session's once the home page has
    been seen (refreshed when older than QUEUE_BADGE_MAX_AGE seconds); None before that, so
    pages other than home add no query while the number is fresh."""
    queue = getattr(request, "_portal_queue", None)
    if queue is not None:
        return int(queue.waiting)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return None
    stored = request.session.get(BADGE_SESSION_KEY)
    if not stored:
        return None
    now = timezone.now()
    max_age = int(getattr(settings, "QUEUE_BADGE_MAX_AGE", 120))
    if max_age and now.timestamp() - float(stored.get("at", 0)) > max_age:
        remember_badge(request, queue_for(user, now))
        return int(request._portal_queue.waiting)  # type: ignore[attr-defined]
    return int(stored.get("n", 0))


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    queue = queue_for(request.user, timezone.now())
    remember_badge(request, queue)
    return render(
        request,
        "deployments/home.html",
        {
            "queue": queue,
            "can_file": bool(selectors.environments_fileable_by(request.user)),
        },
    )


@login_required
@require_GET
def deployment_history(request: HttpRequest, name: str) -> HttpResponse:
    env = history_selectors.history_environment(request.user, name)
    outcome = request.GET.get("outcome", "")
    if outcome not in DeploymentOutcome.values:
        outcome = ""
    rows = history_selectors.deployment_history(request.user, environment=env, outcome=outcome)
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    entries: list[dict[str, Any]] = [
        {
            "d": d,
            "approvers": history_selectors.approvers_of(d),
            "duration": dt.timedelta(seconds=d.duration_seconds)
            if d.duration_seconds is not None
            else None,
        }
        for d in page.object_list
    ]
    return render(
        request,
        "deployments/deployment_history.html",
        {
            "environment": env,
            "page": page,
            "entries": entries,
            "outcome": outcome,
            "outcomes": DeploymentOutcome.values,
        },
    )
