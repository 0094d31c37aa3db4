"""The home page ("what needs me") and the deployment history of an environment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployments.lib import changes
from deployments.models import DeploymentOutcome
from deployments.selectors import history as history_selectors
from deployments.selectors.queue import Queue, queue_for

HISTORY_PAGE_SIZE = 50


def _badge_key(user: Any) -> str:
    # date_joined tells apart two accounts that reused an id (a cache outlives a database).
    joined = user.date_joined.timestamp() if getattr(user, "date_joined", None) else 0
    return f"queue-badge:{user.pk}:{joined}"


def remember_badge(request: HttpRequest, queue: Queue) -> None:
    """Keep the number for the nav badge in the shared cache (no database write)."""
    cache.set(
        _badge_key(request.user),
        {"n": queue.waiting, "at": queue.now.timestamp(), "gen": changes.write_generation()},
        None,
    )
    request._portal_queue = queue  # type: ignore[attr-defined]


def badge(request: HttpRequest) -> int | None:
    """The nav badge: the home page's own count, else the one the home page (or an earlier
    refresh) left in the cache, recomputed as soon as anything was written since (any
    approval, deploy, sign-off... bumps lib.changes) or when older than
    QUEUE_BADGE_MAX_AGE seconds (time alone moves a follow-up into "due"); None until the
    person has seen the home page, so other pages add no query while the number holds."""
    queue = getattr(request, "_portal_queue", None)
    if queue is not None:
        return int(queue.waiting)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    stored = cache.get(_badge_key(user))
    if not stored:
        return None
    now = timezone.now()
    max_age = int(getattr(settings, "QUEUE_BADGE_MAX_AGE", 120))
    written = stored.get("gen") != changes.write_generation()
    if written or (max_age and now.timestamp() - float(stored.get("at", 0)) > max_age):
        fresh = queue_for(user, now)
        remember_badge(request, fresh)
        return fresh.waiting
    return int(stored.get("n", 0))


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    queue = queue_for(request.user, timezone.now())
    remember_badge(request, queue)
    return render(
        request,
        "deployments/home/home.html",
        {
            "queue": queue,
            "can_file": queue.can_file,
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
        "deployments/home/history.html",
        {
            "environment": env,
            "page": page,
            "entries": entries,
            "outcome": outcome,
            "outcomes": DeploymentOutcome.values,
        },
    )
