"""The audit page: the trail for operations, the leads and staff, filtered, newest first."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments import policy, selectors, services
from deployments.models import AuditVerification
from deployments.services import audit

PAGE_SIZE = 50
FILTER_NAMES = ("ticket", "stack", "actor", "action", "since", "until")


def _readable(data: Any) -> list[tuple[str, str]]:
    """An event's data as (key, value) lines: nested values as compact JSON."""
    if not isinstance(data, dict):
        return [("", json.dumps(data, ensure_ascii=False))]
    lines = []
    for key, value in sorted(data.items()):
        if isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        lines.append((key, text if len(text) <= 300 else text[:300] + "…"))
    return lines


def _check_shown(events: list[Any]) -> str:
    """Re-check what the page shows, for free: each event's hash, and the link between
    neighbours with consecutive ids. The whole chain is verify_audit's job."""
    for newer, older in itertools.pairwise(events):
        if newer.pk == older.pk + 1 and newer.prev_hash != older.hash:
            return f"event {newer.pk} does not link to event {older.pk}"
    for event in events:
        if audit.event_hash(event) != event.hash:
            return f"event {event.pk} was altered: its fields do not match its hash"
    return ""


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    if not selectors.may_read_audit(request.user):
        raise PermissionDenied("The audit trail is for operations and the leads.")
    raw = {name: request.GET.get(name, "")[:200] for name in FILTER_NAMES}
    error = ""
    shown_problem = ""
    events: list[Any] = []
    older = None
    try:
        filters = selectors.audit_filters(request.GET)
        before = (request.GET.get("before") or "").strip()
        if before and not (before.isascii() and before.isdigit() and len(before) <= 18):
            raise services.InputError("before", "must be an event id")
    except services.InputError as exc:
        error = f"{exc.field}: {exc.message}"
    except policy.PolicyError as exc:  # pragma: no cover - checked above
        raise PermissionDenied(exc.message) from None
    else:
        queryset = selectors.audit_events(request.user, filters).select_related("ticket")
        if before:
            queryset = queryset.filter(id__lt=int(before))
        events = list(queryset[: PAGE_SIZE + 1])
        if len(events) > PAGE_SIZE:
            events = events[:PAGE_SIZE]
            older = events[-1].pk
        for event in events:
            event.lines = _readable(event.data)
        shown_problem = _check_shown(events)
    query = {name: value for name, value in raw.items() if value}
    return render(
        request,
        "deployments/audit/list.html",
        {
            "events": events,
            "filters": raw,
            "stacks": selectors.stack_names(),
            "error": error,
            "filtered": bool(query),
            "older_query": urlencode({**query, "before": older}) if older else "",
            "newest_query": urlencode(query),
            "paged": bool(request.GET.get("before")),
            "jsonl_query": urlencode({**query, "format": "jsonl"}),
            "csv_query": urlencode({**query, "format": "csv"}),
            "verification": AuditVerification.objects.order_by("-id").first(),
            "shown_problem": shown_problem,
        },
    )
