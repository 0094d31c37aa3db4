"""Celery tasks: deliver one notification, retried with backoff; resend lost ones."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from notifications import service


@shared_task(bind=True, name="notifications.tasks.deliver", ignore_result=True, max_retries=None)
def deliver(self: Any, notification_id: int) -> None:
    status = service.deliver_once(notification_id)
    if status == "queued":  # failed, attempts left: try again later
        attempts = self.request.retries + 1
        raise self.retry(countdown=service.backoff(attempts))


@shared_task(name="notifications.tasks.resend_stale", ignore_result=True)
def resend_stale() -> None:
    service.resend_stale()
