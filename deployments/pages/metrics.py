"""The metrics dashboard (/metrics/): DORA figures with server-rendered SVG charts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployments import selectors
from deployments.pages import charts as metrics_charts
from deployments.selectors import metrics


def _default_environment(visible: list[Any]) -> str:
    """Prod when the viewer sees it (what leaders ask about), else the last one they see."""
    names = [env.name for env in visible]
    if "prod" in names:
        return "prod"
    return names[-1] if names else ""


@login_required
@require_GET
def metrics_dashboard(request: HttpRequest) -> HttpResponse:
    visible = selectors.environments_viewable_by(request.user)
    raw_days = request.GET.get("days")
    raw_env = request.GET.get("environment") or _default_environment(visible)
    context: dict[str, Any] = {
        "visible": visible,
        "periods": metrics.PERIOD_CHOICES,
        "days": raw_days or metrics.DEFAULT_DAYS,
        "environment": raw_env,
        "stack": request.GET.get("stack") or "",
    }
    try:
        days = metrics.parse_days(raw_days or None)  # the page's empty field: the default
        chosen = metrics.choose_environments(visible, raw_env)[0] if raw_env else None
        stack = metrics.choose_stack(request.GET.get("stack"))
    except metrics.MetricsInputError as exc:
        context["error"] = str(exc)
        return render(request, "deployments/metrics/dashboard.html", context, status=400)
    context["days"] = days
    context["custom_days"] = days not in metrics.PERIOD_CHOICES
    if chosen is None:  # the viewer sees no environment at all
        return render(request, "deployments/metrics/dashboard.html", context)
    payload = metrics.metrics_for(visible, days, timezone.now(), stack)
    rows = payload["environments"]
    current = next(row for row in rows if row["environment"] == chosen.name)
    context.update(
        {
            "payload": payload,
            "rows": [_summary_row(row) for row in rows],
            "current": current,
            "figures": _summary_row(current),
            "daily_chart": metrics_charts.daily_bars(current["daily"]),
            "wait_chart": metrics_charts.wait_bars(current["approval_waits"]),
            "gauge": metrics_charts.rate_gauge(current["change_failure_rate"]),
        }
    )
    return render(request, "deployments/metrics/dashboard.html", context)


def _summary_row(row: dict[str, Any]) -> dict[str, Any]:
    fmt = metrics_charts.format_duration
    oldest = row["oldest_waiting_since"]
    oldest_wait = (
        (timezone.now() - dt.datetime.fromisoformat(oldest)).total_seconds() if oldest else None
    )
    return {
        "environment": row["environment"],
        "deployments": row["deployments"],
        "succeeded": row["succeeded"],
        "failures": row["failures"],
        "per_day": row["deployments_per_day"],
        "per_week": row["deployments_per_week"],
        "failure_rate": metrics_charts.format_rate(row["change_failure_rate"]),
        "lead_median": fmt(row["lead_time"]["median_seconds"]),
        "lead_p90": fmt(row["lead_time"]["p90_seconds"]),
        "lead_count": row["lead_time"]["count"],
        "restore_median": fmt(row["time_to_restore"]["median_seconds"]),
        "restore_p90": fmt(row["time_to_restore"]["p90_seconds"]),
        "restore_count": row["time_to_restore"]["count"],
        "unrestored": row["unrestored"],
        "waiting_now": row["awaiting_approval_now"],
        "oldest_wait": fmt(oldest_wait),
    }
