"""The checks every start of an apply makes on the plan it applies, by whoever starts it (a
deploy, or an immediate rollback starting on its approval): the plan's Rego policies, a
successful current plan, not stale, and the start-time decision the worker takes again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from deployments import policy
from deployments.choices import RunStatus
from deployments.models import TerraformRun, Ticket
from deployments.selectors import stray_approvals, votes_for
from deployments.selectors.policies import check_plan_policies_of
from deployments.selectors.windows import plan_is_stale


def check_plan_may_apply(
    ticket: Ticket, *, now: dt.datetime, freezes: Iterable[Any]
) -> TerraformRun:
    """The ticket's current plan, if it may be applied now; else a PolicyError saying why."""
    check_plan_policies_of(ticket)  # Rego policies: 409 naming them and their messages
    plan = ticket.current_plan
    if plan is None or plan.status != RunStatus.SUCCEEDED or not plan.plan_sha256:
        raise policy.PolicyError("there is no successful plan to apply; run a new plan")
    if plan_is_stale(ticket):
        raise policy.PolicyError(policy.STALE_PLAN_MESSAGE)
    # The same decision the worker takes again when the apply starts.
    policy.check_apply_may_start(
        ticket,
        now=now,
        plan_sha256=plan.plan_sha256,
        current_plan_sha256=plan.plan_sha256,
        votes=votes_for(ticket, plan),
        stray_approvals=stray_approvals(ticket, plan),
        freezes=freezes,
        branch=settings.INFRA_BRANCH,
    )
    return plan
