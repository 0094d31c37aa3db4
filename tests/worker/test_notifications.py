"""notify() on the real path: the row is written in the change's transaction, a real Celery
worker process sends the email after commit (file-based backend, read back here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from notifications.models import Notification
from notifications.service import notify
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_sends_the_email_after_commit(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tech_lead: User,
    devops_lead: User,
) -> None:
    outbox = tmp_path / "mail"
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(outbox))
    request.getfixturevalue("celery_worker_process")

    with transaction.atomic():
        rows = notify(
            "emergency.filed",
            roles=["tech_lead", "devops_lead"],
            subject="[EMERGENCY] prod: #7 hotfix",
            body="login is down",
        )
        ids = [r.pk for r in rows]
        assert not outbox.exists()  # nothing is sent before commit

    def all_sent() -> Any:
        done = Notification.objects.filter(pk__in=ids, status=Notification.Status.SENT)
        return done.count() == 2

    wait_for(all_sent, timeout=90, what="the worker to send both emails")
    text = "\n".join(p.read_text() for p in outbox.iterdir())
    assert "To: tess@example.com" in text and "To: otto@example.com" in text
    assert "Subject: [EMERGENCY] prod: #7 hotfix" in text
