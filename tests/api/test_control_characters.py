"""A CR or LF in a title no longer breaks a ticket's emails (issue 16, hole 3).

Titles refuse control characters (400 naming the field, and the form says so); subjects
are folded into one line whatever is stored (rows from before hold CR/LF); and a send
that fails the same way every time (BadHeaderError, an HTTP 404) is ``failed`` at once
with the reason, never retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from pytest_httpserver import HTTPServer

from changecontrol.celery import app
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from deployments.services import notices
from notifications import service
from notifications.models import Notification
from notifications.tasks import deliver
from tests.helpers.api import api_for
from tests.helpers.factories import TicketFactory

pytestmark = pytest.mark.django_db

HOSTILE_TITLES = [
    "Fix\r\nBcc: everyone@example.com",
    "Fix\nthe bucket",
    "Fix\rit",
    "tab\there",
    "escape \x1b[31mred",
    "line\u2028separator",
    "next\x85line",
    "\u202egnp.exe",
]


@pytest.fixture(autouse=True)
def _locmem_mail(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_the_api_refuses_a_title_with_control_characters(author: User, title: str) -> None:
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": title, "environment": "dev"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert "title" in response.json() and "control characters" in str(response.json())
    assert not Ticket.objects.exists()


def test_the_service_refuses_it_too(author: User) -> None:
    from deployments import services

    with pytest.raises(services.InputError) as refused:
        services.ticket_create(
            actor=author, data=services.TicketInput(title="a\r\nb", environment="dev")
        )
    assert refused.value.field == "title" and "control characters" in refused.value.message


def test_the_form_refuses_it_naming_the_title(author: User) -> None:
    client = Client()
    client.force_login(author)
    response = client.post(
        "/tickets/new/",
        {
            "title": "Fix\r\nBcc: everyone@example.com",
            "environment": "dev",
            "change_type": "normal",
        },
    )
    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    assert "control characters" in str(response.context["form"].errors["title"])
    assert not Ticket.objects.exists()


def test_a_stored_title_with_crlf_still_emails_its_approvers_on_one_line(
    author: User, lead: User
) -> None:
    """A row written before titles refused control characters: the approvers are emailed,
    the subject is one line and no header is injected."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
        title="Fix\r\nBcc: everyone@example.com",
    )
    notices.approval_needed(ticket)
    rows = Notification.objects.filter(event="approval.needed", channel="email")
    assert rows.exists() and all("\n" not in r.subject and "\r" not in r.subject for r in rows)
    for pk in rows.values_list("pk", flat=True):
        assert service.deliver_once(pk) == "sent"
    assert [m.to for m in mail.outbox] == [[lead.email]]
    message = mail.outbox[0].message()
    assert (
        message["Subject"] == f"Approval needed: staging #{ticket.pk} Fix Bcc: everyone@example.com"
    )
    assert message["Bcc"] is None and not mail.outbox[0].bcc


def test_a_queued_row_holding_crlf_in_its_subject_is_sent_folded(lead: User) -> None:
    row = Notification.objects.create(
        event="approval.needed",
        channel="email",
        recipient=lead,
        address=lead.email,
        subject="Old row\r\nBcc: everyone@example.com",
        body="recorded before the fix",
    )
    assert service.deliver_once(row.pk) == "sent"
    assert mail.outbox[0].subject == "Old row Bcc: everyone@example.com"
    assert not mail.outbox[0].bcc


@pytest.fixture
def eager() -> Iterator[None]:
    """The delivery task runs in-process, retries included."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


def test_a_permanent_send_error_fails_at_once_with_the_reason(
    settings: Any, lead: User, eager: None
) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 5
    row = Notification.objects.create(
        event="approval.needed",
        channel="email",
        recipient=lead,
        address="lena@example.com\r\nBcc: everyone@example.com",
        subject="Approval needed",
        body="...",
    )
    deliver.delay(row.pk)  # the Celery task: it would retry a transient failure
    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED
    assert row.attempts == 1
    assert row.last_error.startswith("permanent, not retried: BadHeaderError")
    assert not mail.outbox


def test_slack_404_is_permanent_and_500_is_retried(settings: Any, httpserver: HTTPServer) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.NOTIFY_MAX_ATTEMPTS = 5
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "no_service", status=404
    )
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("oops", status=500)
    gone, flaky = (
        Notification.objects.create(
            event="deploy.failed", channel="slack", address="webhook", subject=s, body=""
        )
        for s in ("gone", "flaky")
    )
    assert service.deliver_once(gone.pk) == "failed"
    gone.refresh_from_db()
    assert gone.attempts == 1 and "permanent, not retried: HTTPError" in gone.last_error
    assert service.deliver_once(flaky.pk) == "queued"  # tried again later, with backoff
    flaky.refresh_from_db()
    assert flaky.attempts == 1 and not flaky.last_error.startswith("permanent")
    httpserver.check_assertions()
