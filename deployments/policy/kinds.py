"""How each kind of change (normal, emergency, rollback) is governed at a moment:
emergencies and immediate rollbacks (within their hour) ignore windows and freezes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from deployments.lib.presentation import format_in_zone

if TYPE_CHECKING:
    from deployments.models import Ticket


#
# A rollback ticket re-plans and applies the commit and var-file of the environment's last
# known good deployment before the rolled-back ticket's own. Opened within
# ROLLBACK_IMMEDIATE_MINUTES of that deployment it is *immediate*: one Tech Lead or DevOps
# Lead approves it (never its author) and it may deploy outside the window and during a
# freeze. Opened later it is *planned*: the environment's normal rule, windows and freezes.
# Neither needs the staging promotion gate (the commit was in the environment already) nor
# a questionnaire (the portal writes the rollback plan).
#
# The immediate path lasts as long as its hour does: the hour is counted from the end of
# the rolled-back deployment and recorded on the rollback when it is opened
# (``rollback_immediate_until``). Every check (approve, deploy, schedule, the worker's
# start-time re-check) asks ``is_immediate_rollback(ticket, now)``: past that instant the
# rollback follows the planned path, and an approval it got under the one-lead rule no
# longer suffices on its own (it may be completed by the normal rule's other approvers).


def is_emergency(ticket: Ticket) -> bool:
    return ticket.change_type == "emergency"


def rollback_mode(
    deployed_at: dt.datetime, opened_at: dt.datetime, *, immediate_minutes: int = 60
) -> str:
    """ "immediate" when the rollback is opened within ``immediate_minutes`` of the
    deployment it undoes (the moment its apply finished; the boundary itself counts),
    else "planned"."""
    return (
        "immediate"
        if opened_at <= rollback_immediate_until(deployed_at, immediate_minutes=immediate_minutes)
        else "planned"
    )


def rollback_immediate_until(deployed_at: dt.datetime, *, immediate_minutes: int) -> dt.datetime:
    """The last instant an immediate rollback of a deployment finished at ``deployed_at``
    is immediate (inclusive)."""
    return deployed_at + dt.timedelta(minutes=immediate_minutes)


def _opened_immediate(ticket: Ticket) -> bool:
    return ticket.change_type == "rollback" and getattr(ticket, "rollback_mode", "") == "immediate"


def is_immediate_rollback(ticket: Ticket, now: dt.datetime) -> bool:
    """Is the ticket an immediate rollback at ``now``: opened as one and still within the
    hour of the deployment it undoes? A rollback without a recorded hour is not."""
    until = getattr(ticket, "rollback_immediate_until", None)
    return _opened_immediate(ticket) and until is not None and now <= until


def rollback_lapsed(ticket: Ticket, now: dt.datetime) -> bool:
    """Was the ticket opened as an immediate rollback whose hour has ended by ``now``?"""
    return _opened_immediate(ticket) and not is_immediate_rollback(ticket, now)


def effective_rollback_mode(ticket: Ticket, now: dt.datetime) -> str:
    """How a rollback is governed at ``now`` ("immediate" or "planned"; "" for others)."""
    if ticket.change_type != "rollback":
        return ""
    return "immediate" if is_immediate_rollback(ticket, now) else "planned"


def rollback_lapse_note(ticket: Ticket, now: dt.datetime) -> str:
    """What a lapsed immediate rollback's page and API say, or ""."""
    if not rollback_lapsed(ticket, now):
        return ""
    until = getattr(ticket, "rollback_immediate_until", None)
    zone = ticket.environment.window_timezone or "UTC"
    when = f" at {format_in_zone(until, zone)}" if until is not None else ""
    return (
        f"the immediate rollback's hour ended{when}: it now follows the planned path "
        f"({ticket.environment.name}'s normal approval rule, change window and freezes)"
    )


def ignores_window(ticket: Ticket, now: dt.datetime) -> bool:
    """Emergencies and immediate rollbacks (within their hour) may deploy outside the window
    and in a freeze."""
    return ticket.change_type == "emergency" or is_immediate_rollback(ticket, now)


def window_bypass_note(ticket: Ticket, now: dt.datetime) -> str:
    """Why this ticket may deploy outside the window (for the audit trail), or ""."""
    if ticket.change_type == "emergency":
        return "emergency change: windows and freezes do not apply"
    if is_immediate_rollback(ticket, now):
        return (
            "immediate rollback (within the hour of the deployment it undoes): windows and "
            "freezes do not apply"
        )
    return ""
