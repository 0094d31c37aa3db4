"""Incident paths (issue 22): an immediate rollback started by its approving lead, or by
itself on approval, as its environment says (policy.incidents). Every start is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from deployments import policy
from deployments.models import TerraformRun, Ticket
from deployments.selectors.windows import freezes_for
from deployments.services.audit import audit_record
from deployments.services.deploy_checks import check_plan_may_apply
from deployments.services.runs.start import apply_start


def rollback_started_by_approver(ticket: Ticket, run: TerraformRun, *, actor: Any) -> None:
    """Audit that a lead started the rollback they approved (not a deployer of the
    environment: Environment.immediate_rollback_start = "approver")."""
    audit_record(
        actor=actor,
        action="rollback.start_by_approver",
        ticket=ticket,
        data={
            "run": run.pk,
            "reason": f"{ticket.environment.name} lets the approving lead start an immediate "
            "rollback (immediate_rollback_start = approver)",
        },
    )


def rollback_start_on_approval(ticket: Ticket, *, actor: Any, now: dt.datetime) -> None:
    """After the approval that made an immediate rollback approved, in the same transaction:
    where its environment says so (immediate_rollback_start = on_approval), queue the apply
    with the same checks a deploy makes. A refusal leaves it approved, audited with why."""
    if not policy.starts_on_approval(ticket, now):
        return
    try:
        check_plan_may_apply(ticket, now=now, freezes=freezes_for(ticket.environment, now))
        run = apply_start(ticket, actor=actor, wait_if_busy=True)
    except policy.PolicyError as exc:
        audit_record(
            actor=actor,
            action="rollback.start_on_approval_refused",
            ticket=ticket,
            data={"reason": exc.message},
        )
        return
    audit_record(
        actor=actor,
        action="rollback.start_on_approval",
        ticket=ticket,
        data={
            "run": run.pk if run is not None else None,
            "reason": f"{ticket.environment.name} starts an approved immediate rollback at "
            "once (immediate_rollback_start = on_approval)",
        },
    )
