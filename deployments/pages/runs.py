"""A run's page (its facts and its log, page by page) and the live log feed the ticket
page follows Terraform's output with."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from deployments import selectors

log = logging.getLogger(__name__)


@login_required
@require_GET
def run_log(request: HttpRequest, pk: int) -> JsonResponse:
    """The live log feed: text after ``offset``, and whether the run is still going."""
    run = selectors.run_get(request.user, pk)
    try:
        offset = int(request.GET.get("offset", "0"))
    except ValueError:
        return JsonResponse({"detail": "offset must be an integer"}, status=400)
    text, next_offset = selectors.run_log_since(run, offset)
    latest = run.ticket.runs.order_by("-created_at", "-id").first()
    return JsonResponse(
        {
            "run": run.pk,
            "status": run.status,
            "status_label": run.get_status_display(),
            "active": run.is_active,
            "text": text,
            "offset": next_offset,
            "ticket_status": run.ticket.status,
            "ticket_status_label": run.ticket.get_status_display(),
            # The page follows the ticket from one run to the next without reloading.
            "latest_run": {
                "id": latest.pk,
                "title": f"{latest.get_kind_display()} run #{latest.pk}",
                "log_url": reverse("run_log", args=[latest.pk]),
                "active": latest.is_active,
            }
            if latest
            else None,
        }
    )


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: what it ran, who asked, how it ended, and its log (the end first;
    ``?before=N`` for the page ending at character N)."""
    run = selectors.run_get(request.user, pk)
    before: int | None = None
    if request.GET.get("before"):
        try:
            before = max(0, int(request.GET["before"]))
        except ValueError:
            before = None
    page = selectors.run_log_page(run, before=before)
    return render(
        request,
        "deployments/runs/detail.html",
        {
            "run": run,
            "ticket": run.ticket,
            "page": page,
            "following": run.is_active and before is None,
            "summary_line": selectors.run_summary_line(run),
        },
    )
