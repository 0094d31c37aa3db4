"""Delivery channels, by name. Issue 11 registers Slack and SNS here; callers never change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail


@dataclass(frozen=True)
class Message:
    """What a channel delivers: already rendered, addressed to one recipient."""

    event: str
    address: str
    subject: str
    body: str
    url: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Channel:
    """A way to reach people.

    ``address_for(user)`` returns the user's address on this channel, or "" to skip them
    (recorded as ``skipped``); ``send(message)`` delivers or raises.
    """

    name: str
    address_for: Callable[[Any], str]
    send: Callable[[Message], None]


CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    """Add (or replace) a channel; every ``notify()`` afterwards uses it."""
    CHANNELS[channel.name] = channel


def _email_address(user: Any) -> str:
    return str(getattr(user, "email", "") or "")


def _email_send(message: Message) -> None:
    body = message.body
    if message.url:
        body = f"{body}\n\n{message.url}" if body else message.url
    send_mail(
        subject=message.subject,
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[message.address],
        fail_silently=False,
    )


register(Channel(name="email", address_for=_email_address, send=_email_send))
