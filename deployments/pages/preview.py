"""``GET /tickets/new/preview/``: what the new-ticket form's answers so far will need (the
risk level and the approvals), as JSON for the form's script (static/ticket_new.js)."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployments.lib.validation import InputError
from deployments.selectors.preview import ticket_preview


@login_required
@require_GET
def ticket_new_preview(request: HttpRequest) -> JsonResponse:
    query = request.GET
    answers = {key.removeprefix("risk_"): value for key, value in query.items()}
    try:
        preview = ticket_preview(
            request.user,
            environment=query.get("environment", ""),
            change_type=query.get("change_type", "normal"),
            answers=answers,
            now=timezone.now(),
        )
    except InputError as exc:
        return JsonResponse({"detail": exc.message, "field": exc.field}, status=400)
    return JsonResponse(asdict(preview))
