"""The named seam of the run pipeline: what happens after a plan, an apply and a post-apply
check succeeded, as ordered lists of steps. A capability that acts on one of them adds one
line here (docs/architecture.md walks through an example).

Each step is ``step(ticket, run)``: ``ticket`` is locked and has already moved (the state
machine's part is services.runs.outcome's), ``run`` is the finished run. Steps run in order
inside the transaction that records the run's outcome: what they write commits with it,
and a step that raises undoes the whole outcome (the run stays running until the
reconciler interrupts it), so a step records what it finds rather than refusing. Work
that must wait for the commit (dispatching a run, sending a notification) is queued with
``transaction.on_commit`` by the step itself, as services already do.

Failures are not steps: a failed plan ends plan_failed, a failed apply apply_failed (its
people told), and neither runs what follows.
"""

from __future__ import annotations

from collections.abc import Callable

from deployments.models import TerraformRun, Ticket
from deployments.services import (
    approvals,
    commits,
    dependencies,
    followups,
    monitoring,
    notices,
    policies,
    replans,
    rollbacks,
)
from deployments.services import risk as risk_service
from deployments.services.runs import start as runs

Step = Callable[[Ticket, TerraformRun], object]

# A plan succeeded and is the ticket's current plan; the ticket is still planning.
after_plan: list[Step] = [
    commits.commit_record,  # the commit's message and author, for its reviewers
    risk_service.risk_rescore,  # the risk level first: the approval rule may depend on it
    policies.policy_evaluate,  # Rego policies: their results are in place for the approvers
    approvals.approval_route,  # awaiting approval (its approvers told), or approved/deployed
    replans.schedule_carry,  # a re-planned scheduled ticket keeps its slot (issue 22)
]

# An apply succeeded: the ticket is monitoring (dev: running its post-apply check).
after_apply: list[Step] = [
    notices.deploy_succeeded,
    runs.check_after_apply,  # auto-deploying environments (dev): a re-plan must find nothing
    monitoring.monitoring_start,  # the period, its probes and its checklist
    followups.emergency_deployed,  # the review an emergency owes
    rollbacks.rollback_deployed,  # a rollback ends its original ticket
    replans.schedules_plan_stale,  # scheduled tickets this apply made stale: told at once
    dependencies.dependents_after_apply,  # stacks depending on this one plan here (on commit)
    # No sign-off completes it here: QA's verdicts count only once given after this apply
    # (selectors.evidence.verdicts), never ones that predate it.
]

# A post-apply check found nothing left to change: the ticket is completed.
after_check: list[Step] = []


def run_steps(steps: list[Step], ticket: Ticket, run: TerraformRun) -> None:
    """Run ``steps`` in order (services.runs.outcome calls this; read the lists at call
    time, so a test or a capability may extend them)."""
    for step in list(steps):
        step(ticket, run)
