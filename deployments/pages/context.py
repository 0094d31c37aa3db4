"""Template context every page shares (settings.TEMPLATES' context processor)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from deployments import policy, selectors
from deployments.pages import home

log = logging.getLogger(__name__)


def portal_context(request: HttpRequest) -> dict[str, Any]:
    """Template context shared by every page."""
    return {
        "portal_embedded": settings.EMBEDDED,
        # TERRAFORM_SANDBOX=none: every page says so (docs/security.md).
        "terraform_unisolated": settings.TERRAFORM_SANDBOX == "none",
        "user_roles": sorted(selectors.user_roles(request.user)),
        # Called by the template only where the nav shows it (see home.badge).
        "queue_badge": functools.partial(home.badge, request),
        "may_see_notifications": policy.may_see_notification_log(
            selectors.user_roles(request.user),
            superuser=bool(getattr(request.user, "is_superuser", False)),
        ),
        "may_read_audit": selectors.may_read_audit(request.user),
    }
