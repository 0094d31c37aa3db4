"""Emergencies and follow-ups (post-deployment reviews, post-mortems): who is told, who
completes them, when they are overdue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from deployments.policy.errors import PolicyError
from deployments.policy.roles import (
    FOLLOW_UP_ROLES,
    holds_any,
)
from deployments.policy.rules import (
    rule_roles,
)

if TYPE_CHECKING:
    from deployments.models import Environment


# An emergency deploy leaves a post-deployment review due this long after the deployment.
EMERGENCY_REVIEW_DUE = dt.timedelta(hours=24)


# An overdue follow-up is re-notified at most this often.
FOLLOW_UP_REMIND_EVERY = dt.timedelta(hours=24)


def emergency_notify_roles(env: Environment) -> frozenset[str]:
    """Who is told at once when an emergency is filed: whoever may approve it."""
    return rule_roles(env.emergency_approval_rule)


def may_complete_follow_ups(user_roles: Iterable[str], *, superuser: bool = False) -> bool:
    """Whether this person may complete follow-ups (the form is offered to them)."""
    return superuser or holds_any(user_roles, FOLLOW_UP_ROLES)


def check_may_complete_follow_up(
    *, done: bool, kind_label: str, user_roles: Iterable[str], superuser: bool = False
) -> None:
    """A Tech Lead or DevOps Lead completes a follow-up, once."""
    if not superuser and not holds_any(user_roles, FOLLOW_UP_ROLES):
        raise PolicyError(
            f"a {kind_label.lower()} is completed by a Tech Lead or a DevOps Lead",
            PolicyError.ACTOR,
        )
    if done:
        raise PolicyError(f"this {kind_label.lower()} is already completed")


def follow_up_overdue(
    *, due_at: dt.datetime, done_at: dt.datetime | None, now: dt.datetime
) -> bool:
    return done_at is None and now >= due_at


def follow_up_reminder_due(
    *,
    due_at: dt.datetime,
    done_at: dt.datetime | None,
    last_reminded_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Overdue, and not reminded in the last day."""
    if not follow_up_overdue(due_at=due_at, done_at=done_at, now=now):
        return False
    return last_reminded_at is None or now - last_reminded_at >= FOLLOW_UP_REMIND_EVERY
