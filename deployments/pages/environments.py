"""The environments page: each environment's rule, window, freezes and drift."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployments import policy, selectors
from deployments.selectors.windows import environment_window_state

log = logging.getLogger(__name__)


@login_required
@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    envs = selectors.environments_visible_to(request.user)
    roles = selectors.user_roles(request.user)
    # Drift reports are shown to those who see the environment's tickets.
    drift = selectors.latest_drift_by_environment(
        [e for e in envs if policy.can_view(e, roles, superuser=request.user.is_superuser)]
    )
    rows = [
        {
            "env": env,
            "rule": policy.describe_rule(env.approval_rule),
            "window": policy.Window.of(env),
            # Deployment history is read by those who see every ticket of the environment.
            "history": policy.can_view(
                env, selectors.user_roles(request.user), superuser=request.user.is_superuser
            ),
            **environment_window_state(env, now),  # freezes applied
            "drift": drift.get(env.pk),
            # Who may declare, change and lift its freezes (the form is offered to them).
            "may_freeze": policy.may_manage_freezes(
                env, roles, superuser=request.user.is_superuser
            ),
        }
        for env in envs
    ]
    return render(
        request,
        "deployments/environments/list.html",
        {"rows": rows, "freeze_max_days": settings.FREEZE_MAX_DAYS},
    )
