"""/healthz for load balancers (lib.health probes the parts)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from deployments.lib import health

log = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: database, broker and storage, each checked
    for real (and storage without writing). 200 when all are ok, else 503; the body says
    ``ok`` or ``failed`` per part and nothing more (it is public): the reason is logged."""
    checks: dict[str, str] = {}
    for part, probe in health.PROBES.items():
        try:
            probe()
        except Exception:
            log.exception("health check: %s failed", part)
            checks[part] = "failed"
        else:
            checks[part] = "ok"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
