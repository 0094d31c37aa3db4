"""notify(): rows recorded in the caller's transaction, email sent from Celery after commit,
retried with backoff, then marked failed; recipients by role, skipping users without email."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from changecontrol.celery import app
from notifications import service
from notifications.models import Notification
from notifications.service import notify
from tests.helpers.users import persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery runs tasks in-process (retries included) for these tests."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


class BrokenBackend(BaseEmailBackend):
    """An SMTP server that is down."""

    calls = 0

    def send_messages(self, email_messages: Any) -> int:
        BrokenBackend.calls += 1
        raise ConnectionRefusedError("smtp.example.com:25 refused the connection")


def test_email_is_sent_after_commit_only(
    tech_lead: User, devops_lead: User, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = notify(
            "emergency.filed",
            roles=["tech_lead", "devops_lead"],
            subject="[EMERGENCY] prod: #1 hotfix",
            body="why",
            url="http://portal/tickets/1/",
        )
    assert {r.address for r in rows} == {"tess@example.com", "otto@example.com"}
    assert {r.via_role for r in rows} == {"tech_lead", "devops_lead"}
    assert all(r.status == Notification.Status.QUEUED for r in rows)
    assert mail.outbox == []  # nothing leaves before the change commits
    assert len(callbacks) == 1
    callbacks[0]()
    assert sorted(m.to[0] for m in mail.outbox) == ["otto@example.com", "tess@example.com"]
    assert "http://portal/tickets/1/" in mail.outbox[0].body
    sent = Notification.objects.filter(status=Notification.Status.SENT)
    assert sent.count() == 2 and all(n.sent_at and n.attempts == 1 for n in sent)


def test_a_rolled_back_change_tells_nobody(
    tech_lead: User, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify("x", users=[tech_lead], subject="s", body="b")
        raise RuntimeError("the change failed")
    assert mail.outbox == [] and not Notification.objects.exists()


def test_failing_channel_is_retried_with_backoff_then_marked_failed(
    tech_lead: User, eager: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_BACKEND = "tests.services.test_notices.BrokenBackend"
    settings.NOTIFY_MAX_ATTEMPTS = 3
    BrokenBackend.calls = 0
    with django_capture_on_commit_callbacks(execute=True):
        notify("deploy.failed", users=[tech_lead], subject="s", body="b")  # never raises
    row = Notification.objects.get()
    assert row.status == Notification.Status.FAILED
    assert row.attempts == 3 == BrokenBackend.calls
    assert "ConnectionRefusedError" in row.last_error and row.sent_at is None


def test_backoff_doubles_and_is_capped(settings: Any) -> None:
    settings.NOTIFY_RETRY_BASE_SECONDS = 30
    assert [service.backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert service.backoff(20) == 3600


def test_a_delivery_that_already_happened_is_not_repeated(
    tech_lead: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        (row,) = notify("x", users=[tech_lead], subject="s", body="b")
    assert service.deliver_once(row.pk) == "sent"
    assert service.deliver_once(row.pk) == "gone"  # a duplicate broker delivery
    assert len(mail.outbox) == 1


def test_users_without_email_are_recorded_as_skipped(
    django_capture_on_commit_callbacks: Any, eager: None
) -> None:
    persona("noemail", "devops_lead", email="")
    persona("inactive", "devops_lead", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        rows = notify("x", roles=["devops_lead"], subject="s", body="b")
    assert [(r.recipient.username, r.status) for r in rows] == [("noemail", "skipped")]
    assert rows[0].last_error == "no email address"
    assert mail.outbox == []


def test_a_person_named_and_in_a_role_is_told_once(
    tech_lead: User, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        notify("x", users=[tech_lead], roles=["tech_lead"], subject="s", body="b")
    assert len(mail.outbox) == 1


def test_failures_are_visible_in_the_admin(
    tech_lead: User, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    from django.test import Client

    settings.EMAIL_BACKEND = "tests.services.test_notices.BrokenBackend"
    settings.NOTIFY_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        notify("deploy.failed", users=[tech_lead], subject="Deploy failed", body="b")
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/notifications/notification/?status__exact=failed")
    assert page.status_code == 200
    text = page.content.decode()
    assert "tess@example.com" in text and "ConnectionRefusedError" in text
    assert client.get("/admin/deployments/followup/").status_code == 200
