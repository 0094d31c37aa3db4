"""The monitoring period after a deploy, the post-deployment checklist and completion."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployments.choices import TicketStatus
from deployments.lib.presentation import duration
from deployments.policy.errors import PolicyError
from deployments.policy.roles import (
    is_operations,
)

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


#
# After a deploy to an environment with monitoring_minutes (prod: 60) the ticket stays
# monitoring for that long while the portal probes CloudWatch alarms and health URLs.
# Operations signs each checklist item off with a note (or a passing health check signs the
# items that name it); operations completes the ticket once the period is over, every item
# is signed and no alarm stands. An alarm that fired is either rolled back or, once every
# probe passes again, acknowledged by operations with a note (audited).


CHECKLIST_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


CHECKLIST_MAX_ITEMS = 50


@dataclass(frozen=True)
class HealthCheck:
    """One health-check URL: a GET must answer below 400, within ``max_latency_ms``."""

    url: str
    max_latency_ms: int | None = None


@dataclass(frozen=True)
class ChecklistSpec:
    """One configured checklist item (Environment.checklist)."""

    key: str
    label: str
    auto: str = ""  # a health-check URL whose passing probe signs it


def parse_health_checks(value: Any) -> list[HealthCheck]:
    """Health checks from a list of URLs or {"url", "max_latency_ms"}; ValueError if bad."""
    if not isinstance(value, list):
        raise ValueError('health checks must be a list of URLs or {"url", "max_latency_ms"}')
    out: list[HealthCheck] = []
    for entry in value:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or set(entry) - {"url", "max_latency_ms"}:
            raise ValueError(
                'each health check is a URL or {"url": ..., "max_latency_ms": ...}, not '
                f"{entry!r}"
            )
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]{1,490}$", url):
            raise ValueError(f"a health check URL must start with http:// or https://: {url!r}")
        latency = entry.get("max_latency_ms")
        if latency is not None and (
            not isinstance(latency, int) or isinstance(latency, bool) or latency < 1
        ):
            raise ValueError(f"max_latency_ms must be a positive integer: {latency!r}")
        out.append(HealthCheck(url=url, max_latency_ms=latency))
    return out


def merge_health_checks(*sources: Sequence[HealthCheck]) -> list[HealthCheck]:
    """The union by URL, the first source's latency limit winning."""
    seen: dict[str, HealthCheck] = {}
    for source in sources:
        for check in source:
            seen.setdefault(check.url, check)
    return list(seen.values())


def parse_checklist(value: Any, health_urls: Iterable[str]) -> list[ChecklistSpec]:
    """Checklist items [{"key", "label", "auto"?}]; ``auto`` must name a health-check URL."""
    if not isinstance(value, list) or len(value) > CHECKLIST_MAX_ITEMS:
        raise ValueError(
            f'the checklist is a list of at most {CHECKLIST_MAX_ITEMS} {{"key", "label", '
            '"auto"}} items'
        )
    urls = set(health_urls)
    out: list[ChecklistSpec] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"key", "label", "auto"}:
            raise ValueError(f'each checklist item is {{"key", "label", "auto"?}}, not {entry!r}')
        key, label, auto = entry.get("key"), entry.get("label"), entry.get("auto") or ""
        if not isinstance(key, str) or not CHECKLIST_KEY_RE.match(key):
            raise ValueError(
                f"a checklist key is lower-case letters, digits, - and _ (at most 64): {key!r}"
            )
        if any(item.key == key for item in out):
            raise ValueError(f"checklist key {key!r} appears twice")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ValueError(f"checklist item {key!r} needs a label of at most 200 characters")
        if not isinstance(auto, str) or (auto and auto not in urls):
            raise ValueError(
                f"checklist item {key!r}: auto must be one of the environment's health-check "
                f"URLs, not {auto!r}"
            )
        out.append(ChecklistSpec(key=key, label=label.strip(), auto=auto))
    return out


def monitors(env: Environment) -> bool:
    """Does a deploy here start a monitoring period (with its checklist)? Environments that
    deploy by themselves (dev) run a post-apply check instead."""
    return env.monitoring_minutes > 0 and not env.auto_deploy


def check_may_sign_checklist(
    ticket: Ticket, *, user_roles: Iterable[str], signed_by: str, superuser: bool = False
) -> None:
    """Operations signs an open item of a monitoring ticket, once."""
    if not is_operations(user_roles, superuser):
        raise PolicyError("only operations may sign checklist items off", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(
            "checklist items are signed while the ticket is monitoring; it is "
            f"{status.label.lower()}"
        )
    if signed_by:
        raise PolicyError(f"this item is already signed off by {signed_by}")


@dataclass(frozen=True)
class OpenItem:
    """A checklist item as completion sees it."""

    label: str
    signed: bool


@dataclass(frozen=True)
class Alarm:
    """A fired alarm of the monitoring period, as completion sees it."""

    at: dt.datetime
    reason: str
    acknowledged: bool


def check_may_complete(
    ticket: Ticket,
    items: Sequence[OpenItem],
    alarms: Sequence[Alarm],
    now: dt.datetime,
    *,
    ends_at: dt.datetime | None,
    user_roles: Iterable[str] | None = None,
    superuser: bool = False,
) -> None:
    """May operations complete the ticket now? Every reason it may not, in one sentence."""
    if user_roles is not None and not is_operations(user_roles, superuser):
        raise PolicyError("only operations may complete a ticket", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(f"a ticket that is {status.label.lower()} cannot be completed")
    if ticket.environment.auto_deploy:
        raise PolicyError(
            f"{ticket.environment.name} tickets complete when the post-apply check passes"
        )
    if ticket.environment.requires_qa_signoff:
        raise PolicyError(
            f"{ticket.environment.name} tickets complete when QA signs off the smoke tests "
            "and the QA report"
        )
    reasons: list[str] = []
    if ends_at is not None and now < ends_at:
        left = ends_at - now
        left_text = duration(left) if left >= dt.timedelta(minutes=1) else "less than a minute"
        reasons.append(
            f"the monitoring period runs until {ends_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC "
            f"({left_text} left)"
        )
    open_items = [item.label for item in items if not item.signed]
    if open_items:
        reasons.append(
            f"{len(open_items)} checklist item{'s are' if len(open_items) != 1 else ' is'} "
            f"still open: {', '.join(open_items)}"
        )
    standing = [alarm for alarm in alarms if not alarm.acknowledged]
    if standing:
        first = standing[0]
        reasons.append(
            f"an alarm fired at {first.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({first.reason}): "
            "roll back, or once every probe passes again operations acknowledges the alarm "
            "with a note"
        )
    if reasons:
        raise PolicyError("cannot complete yet: " + "; ".join(reasons))


def check_may_acknowledge_alarm(
    ticket: Ticket,
    alarm: Alarm | None,
    failing: Sequence[str],
    *,
    user_roles: Iterable[str],
    superuser: bool = False,
) -> None:
    """Operations acknowledges an alarm that fired, once every probe passes again."""
    if not is_operations(user_roles, superuser):
        raise PolicyError("only operations may acknowledge an alarm", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status != TicketStatus.MONITORING:
        raise PolicyError(f"a ticket that is {status.label.lower()} has no alarm to acknowledge")
    if alarm is None:
        raise PolicyError("no alarm fired during this monitoring period")
    if alarm.acknowledged:
        raise PolicyError("this alarm is already acknowledged")
    if failing:
        raise PolicyError(
            f"still failing: {', '.join(failing)}; roll back, or acknowledge once the probes pass"
        )
