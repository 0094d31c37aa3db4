"""Delivery channels, by name: email to people; Slack and SNS to the team.

A *person* channel (email) gets one row per recipient; a *team* channel (Slack, SNS) gets
one row per event when it takes that event (``takes(event, data)`` returns the address:
the webhook URL or topic ARN, or "" to pass). Callers of ``notify()`` never change.
"""

from __future__ import annotations

import json
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import BadHeaderError, send_mail

from notifications import events


@dataclass(frozen=True)
class Message:
    """What a channel delivers: already rendered, addressed to one recipient."""

    event: str
    address: str
    subject: str
    body: str
    url: str
    data: dict[str, Any]


class PermanentError(Exception):
    """A send that would fail the same way every time (bad configuration, a message no
    channel can carry): the notification is failed at once, never retried."""


# Line breaks (and every other control character) in a header value start a new header:
# subjects are folded into one line whatever the stored text holds (rows recorded before
# titles refused them may hold CR or LF).
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` as one line: control characters become spaces, runs of white space fold."""
    return " ".join(_LINE_BREAKING.sub(" ", text).split())


# HTTP answers that a retry would not change (408 and 429 say "later", 425 "too early").
_HTTP_RETRYABLE_4XX = frozenset({408, 425, 429})


def is_permanent(exc: BaseException) -> bool:
    """Would sending the same message again fail the same way? Header injection refused
    (BadHeaderError), text a channel cannot encode, no such channel, a mail server's 5xx
    for every recipient, an HTTP 4xx (but 408/425/429), a PermanentError."""
    if isinstance(exc, PermanentError | BadHeaderError | LookupError | UnicodeError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in _HTTP_RETRYABLE_4XX
    return False


def _no_address(user: Any) -> str:
    return ""


def _no_refusal(user: Any, event: str) -> str:
    return ""


def _takes_nothing(event: str, data: Mapping[str, Any]) -> str:
    return ""


PERSON = "person"
TEAM = "team"


@dataclass(frozen=True)
class Channel:
    """A way to reach people.

    Person channels: ``address_for(user)`` returns the user's address, or "" to skip them
    (recorded as ``skipped``); ``refusal(user, event)`` says why this user does not want this
    event here ("" = send). Team channels: ``takes(event, data)`` returns where to send it,
    or "" (no row at all). ``send(message)`` delivers or raises.
    """

    name: str
    send: Callable[[Message], None]
    address_for: Callable[[Any], str] = _no_address
    kind: str = PERSON
    refusal: Callable[[Any, str], str] = _no_refusal
    takes: Callable[[str, Mapping[str, Any]], str] = _takes_nothing


CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    """Add (or replace) a channel; every ``notify()`` afterwards uses it."""
    CHANNELS[channel.name] = channel


# --- email (people) -------------------------------------------------------------


def _email_address(user: Any) -> str:
    return str(getattr(user, "email", "") or "")


def _email_send(message: Message) -> None:
    body = message.body
    if message.url:
        body = f"{body}\n\n{message.url}" if body else message.url
    send_mail(
        subject=one_line(message.subject) or message.event,
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[message.address],
        fail_silently=False,
    )


# --- Slack incoming webhook (team) ----------------------------------------------------


def _slack_takes(event: str, data: Mapping[str, Any]) -> str:
    """The row's address is the webhook's host only: the URL itself is a secret (anyone who
    has it can post to the channel), so it is read from settings when sending, never stored."""
    url = str(settings.SLACK_WEBHOOK_URL or "")
    if not url or event not in events.SLACK_EVENTS:
        return ""
    return f"webhook {urllib.parse.urlsplit(url).netloc or '(invalid URL)'}"


def _mrkdwn(text: str) -> str:
    """Slack's three escapes (&, <, >), so text cannot forge a link (``<https://…|…>``), a
    mention (``<@U…>``) or a broadcast (``<!channel>``, ``<!here>``): Slack reads its
    control sequences only between unescaped angle brackets."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    """A Slack link to the portal's own URL; the label is escaped, and so is the URL (a
    ``|`` or ``>`` in it would end the link early)."""
    return f"<{_mrkdwn(url).replace('|', '%7C')}|{_mrkdwn(label)}>"


def slack_payload(message: Message) -> dict[str, Any]:
    """The JSON posted to the webhook: a fallback ``text`` and blocks with the ticket link,
    environment, who, what and commit. Every value that carries text from people (titles,
    names, reasons) is escaped, the fallback ``text`` included: notifications show it."""
    data = message.data
    subject = one_line(message.subject)
    heading = f"*{_link(message.url, subject)}*" if message.url else f"*{_mrkdwn(subject)}*"
    commit = str(data.get("commit_sha") or "")
    facts = [
        ("Environment", str(data.get("environment") or "")),
        ("Who", str(data.get("actor") or data.get("author") or "")),
        ("What", str(data.get("what") or message.event)),
        ("Commit", commit[:12]),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": heading}},
    ]
    fields = [
        {
            "type": "mrkdwn",
            "text": f"*{name}*\n" + (f"`{_mrkdwn(value)}`" if name == "Commit" else _mrkdwn(value)),
        }
        for name, value in facts
        if value
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if message.body:
        context = {"type": "mrkdwn", "text": _mrkdwn(message.body)[:2900]}
        blocks.append({"type": "context", "elements": [context]})
    text = _mrkdwn(subject) + (f" {_link(message.url, 'open')}" if message.url else "")
    return {"text": text, "blocks": blocks}


def _slack_send(message: Message) -> None:
    url = str(settings.SLACK_WEBHOOK_URL or "")
    if not url.startswith(("https://", "http://")):
        raise PermanentError("SLACK_WEBHOOK_URL is not set to an http(s) URL")
    body = json.dumps(slack_payload(message)).encode()
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # A non-2xx answer raises HTTPError: recorded on the row and retried with backoff.
    with urllib.request.urlopen(request, timeout=settings.NOTIFY_HTTP_TIMEOUT) as response:  # noqa: S310
        response.read()


# --- AWS SNS (on-call team) -----------------------------------------------------------


def _sns_takes(event: str, data: Mapping[str, Any]) -> str:
    arn = str(settings.SNS_TOPIC_ARN or "")
    return arn if arn and events.is_on_call(event, data) else ""


def _sns_region(arn: str) -> str | None:
    """The topic's region from its ARN (arn:aws:sns:REGION:ACCOUNT:NAME), else the default."""
    parts = arn.split(":")
    if len(parts) >= 6 and parts[3]:
        return parts[3]
    return None  # boto3 reads AWS_DEFAULT_REGION


_SUBJECT_UNSAFE = re.compile(r"[^\x20-\x7e]")


def _sns_send(message: Message) -> None:
    import boto3

    client = boto3.client(
        "sns", region_name=_sns_region(message.address), endpoint_url=settings.AWS_ENDPOINT_URL
    )
    text = message.body
    if message.url:
        text = f"{text}\n\n{message.url}" if text else message.url
    # SNS subjects: printable ASCII, no line breaks, under 100 characters.
    subject = _SUBJECT_UNSAFE.sub("?", message.subject)[:99] or message.event
    client.publish(
        TopicArn=message.address,
        Subject=subject,
        Message=text or message.subject,
        MessageAttributes={"event": {"DataType": "String", "StringValue": message.event}},
    )


register(
    Channel(
        name="email",
        kind=PERSON,
        address_for=_email_address,
        refusal=events.email_refusal,
        send=_email_send,
    )
)
register(Channel(name="slack", kind=TEAM, takes=_slack_takes, send=_slack_send))
register(Channel(name="sns", kind=TEAM, takes=_sns_takes, send=_sns_send))
