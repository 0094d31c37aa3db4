"""Per-user API throttling: API_THROTTLE_RATE, counted in the shared cache (all workers)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle


class PerUserThrottle(UserRateThrottle):
    """DRF's user throttle, its rate read from settings on every request (tests may lower
    it); over the limit DRF answers 429 with Retry-After and a JSON ``detail``."""

    scope = "user"

    def __init__(self) -> None:
        # Skip UserRateThrottle.__init__: it reads the rate once from DRF's settings.
        pass

    def get_rate(self) -> str | None:
        rate = str(getattr(settings, "API_THROTTLE_RATE", "600/min"))
        return None if rate == "off" else rate

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
