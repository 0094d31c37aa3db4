"""Rollback to the last known good deployment: who may open one, and when there is something
safe to return to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deployments.choices import TicketStatus
from deployments.lib.presentation import role_label
from deployments.policy.errors import PolicyError
from deployments.policy.roles import (
    ROLLBACK_LEAD_ROLES,
    holds_any,
)

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


#
# A rollback ticket re-plans and applies the commit and var-file of the environment's last
# known good deployment before the rolled-back ticket's own. Opened within
# ROLLBACK_IMMEDIATE_MINUTES of that deployment it is *immediate*: one Tech Lead or DevOps
# Lead approves it (never its author) and it may deploy outside the window and during a
# freeze. Opened later it is *planned*: the environment's normal rule, windows and freezes.
# Neither needs the staging promotion gate (the commit was in the environment already) nor
# a questionnaire (the portal writes the rollback plan).
#


# Ticket states in which Terraform has changed the environment for the ticket.
ROLLBACK_FROM_STATUSES = frozenset(
    {TicketStatus.MONITORING, TicketStatus.COMPLETED, TicketStatus.APPLY_FAILED}
)


def may_open_rollback(env: Environment, user_roles: Iterable[str], *, superuser: bool) -> bool:
    return superuser or holds_any(user_roles, set(env.deploy_groups) | ROLLBACK_LEAD_ROLES)


@dataclass(frozen=True)
class RollbackFacts:
    """What the rollback rule needs to know about a ticket, read by the selectors."""

    deployed: bool  # Terraform applied something for it (a Deployment record exists)
    target_ticket_id: int | None  # the last known good deployment's ticket, if any
    open_rollback_id: int | None  # a rollback of this ticket that is not finished
    newer_ticket_id: int | None  # a later good deployment of the environment, if any


def check_may_roll_back(
    ticket: Ticket,
    facts: RollbackFacts,
    *,
    user_roles: Iterable[str],
    superuser: bool = False,
) -> None:
    """May this person open a rollback of the ticket now? 403 for the wrong person, 409
    (naming the reason) when there is nothing, or nothing safe, to return to."""
    env = ticket.environment
    if not may_open_rollback(env, user_roles, superuser=superuser):
        who = sorted({*env.deploy_groups, *ROLLBACK_LEAD_ROLES})
        raise PolicyError(
            f"{env.name} rollbacks are opened by {' or '.join(role_label(r) for r in who)}",
            PolicyError.ACTOR,
        )
    if ticket.change_type == "rollback":
        raise PolicyError(
            "a rollback ticket is not rolled back itself; file a normal ticket for the commit "
            "you want deployed"
        )
    status = TicketStatus(ticket.status)
    if facts.open_rollback_id is not None:
        raise PolicyError(
            f"a rollback of this ticket is already open: ticket #{facts.open_rollback_id}",
            data={"rollback": facts.open_rollback_id},
        )
    if status not in ROLLBACK_FROM_STATUSES or not facts.deployed:
        raise PolicyError(
            f"only a deployed ticket (monitoring, completed, or apply failed after Terraform "
            f"changed the environment) can be rolled back; this one is {status.label.lower()}"
            + ("" if facts.deployed else " and was never deployed")
        )
    if facts.newer_ticket_id is not None:
        raise PolicyError(
            f"ticket #{facts.newer_ticket_id} deployed to {env.name} after this one; roll that "
            "one back first (a rollback returns the whole environment to an earlier state)"
        )
    if facts.target_ticket_id is None:
        raise PolicyError(
            f"there is no earlier good deployment of {env.name} to return to (none succeeded "
            "before this one without being rolled back or failing its monitoring)"
        )
