"""Who may see what (SPEC §2): environments, tickets, the audit trail and the notification
log; who may file and withdraw a ticket."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from deployments.policy.errors import PolicyError
from deployments.policy.roles import (
    AUDIT_READER_ROLES,
    LEAD_ROLES,
    NOTIFICATION_LOG_ROLES,
    holds_any,
)
from deployments.policy.rules import (
    approver_roles,
)

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


def can_view(env: Environment, user_groups: Iterable[str], *, superuser: bool = False) -> bool:
    """May this person see every ticket, run and log of the environment?

    Its ``view_groups`` may, and so may its approvers: nobody is asked to approve
    what they cannot read. Others see only the tickets they filed (may_see_ticket).
    """
    groups = set(user_groups)
    return superuser or holds_any(groups, env.view_groups) or holds_any(groups, approver_roles(env))


def can_see_environment(
    env: Environment, user_groups: Iterable[str], *, superuser: bool = False
) -> bool:
    """May this person see the environment's policy: those who see its tickets or may file one."""
    return can_view(env, user_groups, superuser=superuser) or holds_any(
        user_groups, env.file_groups
    )


def may_see_ticket(
    ticket: Ticket, user_id: int | None, user_groups: Iterable[str], *, superuser: bool = False
) -> bool:
    """The one visibility rule (SPEC §2): the environment's viewers and approvers see its
    tickets, runs and logs, and an author always sees their own; everyone else gets 404.
    ``selectors.tickets_visible_to`` is this rule written as a query."""
    if user_id is not None and ticket.author_id == user_id:
        return True
    return can_view(ticket.environment, user_groups, superuser=superuser)


def check_may_file(
    env: Environment, user_groups: Iterable[str], *, superuser: bool = False
) -> None:
    if superuser or holds_any(user_groups, env.file_groups):
        return
    raise PolicyError(
        f"you may not file {env.name} tickets: that needs one of the roles "
        f"{', '.join(env.file_groups) or '(none configured)'}",
        PolicyError.ACTOR,
    )


def missing_ticket_fields(env: Environment, ticket: Ticket) -> list[str]:
    """What an environment requires a ticket to carry before it is filed and it lacks
    (the caller answers 400 naming them: it is missing input, not a refused person)."""
    if not env.requires_change_details:
        return []
    return [
        name
        for name, value in (
            ("description", ticket.description.strip()),
            ("risk_assessment", ticket.risk_assessment),
            ("rollback_plan", ticket.rollback_plan),
        )
        if not value
    ]


def check_may_cancel(
    ticket: Ticket, user_id: int, user_groups: Iterable[str], *, superuser: bool = False
) -> None:
    """The author or a lead may withdraw a ticket."""
    if superuser or ticket.author_id == user_id or holds_any(user_groups, LEAD_ROLES):
        return
    raise PolicyError("only the ticket's author or a lead can cancel it", PolicyError.ACTOR)


def can_read_audit(user_groups: Iterable[str], *, staff: bool = False) -> bool:
    return staff or bool(AUDIT_READER_ROLES & set(user_groups))


def check_may_read_audit(user_groups: Iterable[str], *, staff: bool = False) -> None:
    if not can_read_audit(user_groups, staff=staff):
        raise PolicyError(
            "The audit trail is for operations and the leads.", kind=PolicyError.ACTOR
        )


def may_see_notification_log(user_roles: Iterable[str], *, superuser: bool = False) -> bool:
    return superuser or holds_any(user_roles, NOTIFICATION_LOG_ROLES)


def check_may_see_notification_log(user_roles: Iterable[str], *, superuser: bool = False) -> None:
    if not may_see_notification_log(user_roles, superuser=superuser):
        raise PolicyError(
            "only Operations and leads see the notification log and retry failed notifications",
            PolicyError.ACTOR,
        )
