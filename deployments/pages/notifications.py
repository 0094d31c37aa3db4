"""The notification log: what the portal told whom, and how it went (Operations and leads).
Failed rows can be retried from here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from deployments import policy, selectors, services
from deployments.lib import validation
from deployments.pages.actions import Done, page_action
from notifications.models import Notification

PAGE_SIZE = 100


def _check_may_see(request: HttpRequest) -> None:
    if not policy.may_see_notification_log(
        selectors.user_roles(request.user), superuser=bool(request.user.is_superuser)
    ):
        raise PermissionDenied("only Operations and leads see the notification log")


def _clean(value: str) -> str:
    """A filter value: short plain text, or nothing (an unmatched filter shows all)."""
    return "" if validation.text_problem(value) or len(value) > 64 else value


@login_required
@require_GET
def notification_log(request: HttpRequest) -> HttpResponse:
    _check_may_see(request)
    status = request.GET.get("status", "")
    if status not in Notification.Status.values:
        status = ""
    event = _clean(request.GET.get("event", ""))
    channel = _clean(request.GET.get("channel", ""))
    rows = selectors.notifications_visible_to(
        request.user, status=status, event=event, channel=channel
    )[:PAGE_SIZE]
    return render(
        request,
        "deployments/notifications/log.html",
        {
            "rows": rows,
            "status": status,
            "event": event,
            "channel": channel,
            "statuses": Notification.Status.choices,
            "page_size": PAGE_SIZE,
        },
    )


def _failed_log(**_: object) -> str:
    return f"{reverse('notification_log')}?status=failed"


@login_required
@require_POST
@page_action(back=_failed_log)
def notification_retry(request: HttpRequest, pk: int) -> Done:
    _check_may_see(request)
    if not selectors.notifications_visible_to(request.user).filter(pk=pk).exists():
        raise Http404("no such notification")
    row = services.notices.notification_retry(notification_id=pk, actor=request.user)
    return Done(f"Notification {row.pk} ({row.event} by {row.channel}) queued again.")
