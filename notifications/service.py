"""``notify()``: record who is told what inside the caller's transaction; send after commit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from notifications import times
from notifications.channels import CHANNELS, TEAM, Message, is_permanent, one_line
from notifications.models import Notification

log = logging.getLogger(__name__)


def _recipients(
    users: Iterable[Any], roles: Iterable[str], exclude: Iterable[Any] = ()
) -> list[tuple[Any, str]]:
    """Named users first, then active members of each role; each person once, never anyone
    in ``exclude`` (e.g. the author of the ticket that needs approval)."""
    seen: set[int] = {user.pk for user in exclude if user is not None}
    out: list[tuple[Any, str]] = []
    for user in users:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            out.append((user, ""))
    roles = list(roles)
    if roles:
        members = (
            get_user_model()
            .objects.filter(groups__name__in=roles, is_active=True)
            .select_related("preference")
            .prefetch_related("groups")
            .order_by("username")
            .distinct()
        )
        for user in members:
            if user.pk not in seen:
                seen.add(user.pk)
                held = sorted({g.name for g in user.groups.all()} & set(roles))
                out.append((user, ",".join(held)))
    return out


def notify(
    event: str,
    *,
    ticket: Any = None,
    users: Iterable[Any] = (),
    roles: Iterable[str] = (),
    exclude: Iterable[Any] = (),
    subject: str,
    body: str,
    url: str = "",
    data: dict[str, Any] | None = None,
) -> list[Notification]:
    """Tell people about ``event`` on every registered channel; sent from Celery after commit.

    Runs inside the caller's transaction: if the change rolls back, nobody is told. Person
    channels (email) get one row per recipient: a user the channel cannot reach (no email
    address) or who opted out of the event is recorded as ``skipped`` with the reason. Team
    channels (Slack, SNS) get one row per event when they take it (channels.Channel.takes).
    """
    data = data or {}
    base = {
        "event": event,
        "ticket": ticket,
        "subject": one_line(subject)[:300],
        "body": body,
        "url": url[:500],
        "data": data,
    }
    rows: list[Notification] = []
    people = _recipients(users, roles, exclude)
    for channel in CHANNELS.values():
        if channel.kind == TEAM:
            address = channel.takes(event, data)
            if address:
                rows.append(
                    Notification(
                        channel=channel.name,
                        address=address[:320],
                        **{
                            **base,
                            "subject": times.render(base["subject"]),
                            "body": times.render(base["body"]),
                        },
                    )
                )
            continue
        for user, via_role in people:
            address = channel.address_for(user)
            why = channel.refusal(user, event) if address else f"no {channel.name} address"
            zone = times.zone_of(user)  # each reader's own time zone (their settings)
            rows.append(
                Notification(
                    channel=channel.name,
                    recipient=user,
                    address=address[:320],
                    via_role=via_role,
                    status=Notification.Status.SKIPPED if why else Notification.Status.QUEUED,
                    last_error=why,
                    **{
                        **base,
                        "subject": times.render(base["subject"], zone),
                        "body": times.render(base["body"], zone),
                    },
                )
            )
    for row in rows:
        row.save()
    ids = [row.pk for row in rows if row.status == Notification.Status.QUEUED]
    if ids:
        transaction.on_commit(lambda: dispatch(ids))
    return rows


def dispatch(ids: Iterable[int]) -> None:
    """Hand queued notifications to Celery; a broker outage leaves them queued (resent later)."""
    from notifications.tasks import deliver

    for pk in ids:
        try:
            deliver.delay(pk)
        except Exception:
            log.exception("could not enqueue notification %s; it stays queued", pk)


def backoff(attempt: int) -> int:
    """Seconds to wait before attempt ``attempt + 1``: 30 s, 60 s, 120 s ... capped at 1 h."""
    base: int = settings.NOTIFY_RETRY_BASE_SECONDS
    return int(min(base * (2 ** max(attempt - 1, 0)), 3600))


def deliver_once(notification_id: int) -> str:
    """One delivery attempt. Returns the row's status afterwards (``queued`` = retry later)."""
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update()
            .filter(pk=notification_id, status=Notification.Status.QUEUED)
            .first()
        )
        if row is None:
            return "gone"  # already sent/failed by another delivery
        row.attempts += 1
        channel = CHANNELS.get(row.channel)
        try:
            if channel is None:
                raise LookupError(f"no channel named {row.channel!r} is registered")
            channel.send(
                Message(
                    event=row.event,
                    address=row.address,
                    subject=row.subject,
                    body=row.body,
                    url=row.url,
                    data=row.data,
                )
            )
        except Exception as exc:
            permanent = is_permanent(exc)
            row.last_error = (
                f"{'permanent, not retried: ' if permanent else ''}{type(exc).__name__}: {exc}"
            )[:2000]
            if permanent or row.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                row.status = Notification.Status.FAILED
                log.error(
                    "notification %s (%s to %s) failed after %s attempts: %s",
                    row.pk,
                    row.event,
                    row.address,
                    row.attempts,
                    row.last_error,
                )
            else:
                log.warning(
                    "notification %s attempt %s failed: %s", row.pk, row.attempts, row.last_error
                )
        else:
            row.status = Notification.Status.SENT
            row.sent_at = timezone.now()
            row.last_error = ""
        row.save(update_fields=["attempts", "status", "sent_at", "last_error"])
        return str(row.status)


def resend_stale(*, older_than_seconds: int = 3600) -> int:
    """Re-enqueue rows still queued long after they were recorded (a lost broker message)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        Notification.objects.filter(
            status=Notification.Status.QUEUED, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    dispatch(ids)
    return len(ids)


def requeue_failed(notification_id: int) -> tuple[Notification, int, str] | None:
    """Inside the caller's transaction: put a failed notification back in the queue with a
    fresh set of attempts, sent after commit. Returns the row with the attempts and error it
    had, or None when there is no such failed row (sent, queued or skipped rows stay put)."""
    row = (
        Notification.objects.select_for_update()
        .filter(pk=notification_id, status=Notification.Status.FAILED)
        .first()
    )
    if row is None:
        return None
    attempts, error = row.attempts, row.last_error
    row.status = Notification.Status.QUEUED
    row.attempts = 0
    row.last_error = ""
    row.save(update_fields=["status", "attempts", "last_error"])
    pk = row.pk
    transaction.on_commit(lambda: dispatch([pk]))
    return row, attempts, error
