"""Slack never reads a control sequence from user text (issue 16, hole 5): the fallback
``text`` and every block field carrying a title, a name or a reason are escaped by Slack's
rules (&, <, >), so ``<!channel>``, ``<@U…>`` and ``<https://…|…>`` from a ticket reach the
channel as text. Checked on the JSON a real HTTP receiver got."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_httpserver import HTTPServer

from deployments.choices import TicketStatus
from deployments.models import Environment
from deployments.services import notices
from notifications import service
from notifications.channels import Message, slack_payload
from notifications.models import Notification
from tests.helpers.factories import TicketFactory

pytestmark = pytest.mark.django_db

HOSTILE = (
    "<!channel> <!here|here> <@U024BE7LH> <https://evil.example/login|Reset your password> & co"
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _unescaped_controls(text: str) -> list[str]:
    """Every Slack control sequence in ``text``: <!...>, <@...>, <#...> and links whose
    target is not the portal's own."""
    return [
        m.group(0)
        for m in re.finditer(r"<([^>]*)>", text)
        if not m.group(1).startswith("https://portal.example.com/")
    ]


def test_a_hostile_title_and_actor_reach_slack_as_text(
    httpserver: HTTPServer, settings: Any, author: User
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    author.username = "<!everyone>"
    author.save()
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
        title=HOSTILE,
    )
    notices.approval_needed(ticket)
    row = Notification.objects.get(channel="slack")
    assert service.deliver_once(row.pk) == "sent"
    httpserver.check_assertions()
    payload = json.loads(httpserver.log[0][0].data)
    for text in _strings(payload):
        assert _unescaped_controls(text) == [], text
    assert "&lt;!channel&gt;" in payload["text"]
    assert "&lt;https://evil.example/login|Reset your password&gt;" in payload["text"]
    assert "&amp; co" in payload["text"]
    assert f"<https://portal.example.com/tickets/{ticket.pk}/|open>" in payload["text"]


@pytest.mark.parametrize(
    "field", ["subject", "body", "environment", "actor", "what", "commit_sha", "url"]
)
def test_every_field_is_escaped(field: str) -> None:
    values = {
        "subject": "s",
        "body": "b",
        "url": "https://portal.example.com/tickets/1/",
        "data": {"environment": "e", "actor": "a", "what": "w", "commit_sha": "c" * 40},
    }
    if field in ("subject", "body"):
        values[field] = HOSTILE
    elif field == "url":
        values["url"] = "https://portal.example.com/tickets/1/?x=<!channel>|<@U1>"
    else:
        values["data"][field] = HOSTILE  # type: ignore[index]
    payload = slack_payload(Message(event="deploy.failed", address="webhook", **values))  # type: ignore[arg-type]
    for text in _strings(payload):
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text, text
