"""Status enums and the ticket transition table (SPEC §5), as plain data."""

from __future__ import annotations

from django.db import models


class TicketStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLANNING = "planning", "Planning"
    PLAN_FAILED = "plan_failed", "Plan failed"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    APPLYING = "applying", "Applying"
    APPLY_FAILED = "apply_failed", "Apply failed"
    MONITORING = "monitoring", "Monitoring"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    ROLLED_BACK = "rolled_back", "Rolled back"


S = TicketStatus

# Every move a ticket may make. Anything else is refused by ticket_transition.
ALLOWED_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.DRAFT: frozenset({S.PLANNING, S.CANCELLED}),
    S.PLANNING: frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.PLAN_FAILED, S.CANCELLED}),
    S.PLAN_FAILED: frozenset({S.PLANNING, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.PLANNING, S.CANCELLED}),
    S.APPROVED: frozenset({S.APPLYING, S.SCHEDULED, S.PLANNING, S.REJECTED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.APPLYING, S.APPROVED, S.PLANNING, S.CANCELLED}),
    # Back to approved / awaiting approval only when the worker's start-time re-check
    # refuses the apply (window closed, approvals no longer hold): Terraform never ran.
    S.APPLYING: frozenset(
        {S.MONITORING, S.COMPLETED, S.APPLY_FAILED, S.APPROVED, S.AWAITING_APPROVAL}
    ),
    S.APPLY_FAILED: frozenset({S.PLANNING, S.CANCELLED, S.ROLLED_BACK}),
    # A dev ticket's automated checks run while it is monitoring; a failed check
    # ends it apply_failed with the reason.
    S.MONITORING: frozenset({S.COMPLETED, S.APPLY_FAILED, S.ROLLED_BACK}),
    S.COMPLETED: frozenset({S.ROLLED_BACK}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.ROLLED_BACK: frozenset(),
}

TERMINAL_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets)
# States in which Terraform may be writing to the environment: never cancelled.
APPLYING_STATUSES = frozenset({S.APPLYING})
# A new plan may be requested from these states (it voids earlier approvals).
REPLANNABLE_STATUSES = frozenset(
    s for s, targets in ALLOWED_TRANSITIONS.items() if S.PLANNING in targets
)


class ChangeType(models.TextChoices):
    NORMAL = "normal", "Normal"
    EMERGENCY = "emergency", "Emergency"
    ROLLBACK = "rollback", "Rollback"


class RollbackMode(models.TextChoices):
    """How a rollback ticket is governed (policy.rollback_mode decides it when it is opened)."""

    # Opened within ROLLBACK_IMMEDIATE_MINUTES of the deployment it undoes: one Tech Lead or
    # DevOps Lead approves, and it may deploy outside the window and during a freeze.
    IMMEDIATE = "immediate", "Immediate"
    # Later: the environment's normal approval rule, windows and freezes.
    PLANNED = "planned", "Planned"


class DriftStatus(models.TextChoices):
    RUNNING = "running", "Running"
    NO_DRIFT = "no_drift", "No drift"
    DRIFTED = "drifted", "Drift detected"
    FAILED = "failed", "Check failed"
    SKIPPED = "skipped", "Skipped"


class RunKind(models.TextChoices):
    PLAN = "plan", "Plan"
    APPLY = "apply", "Apply"
    # A re-plan with -detailed-exitcode after an apply: it must find no changes.
    CHECK = "check", "Post-apply check"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINISHED_RUN_STATUSES = frozenset(set(RunStatus) - ACTIVE_RUN_STATUSES)


class Role(models.TextChoices):
    """Django group names (SPEC §2); a user may hold several."""

    DEVELOPER = "developer", "Developer"
    LEAD_DEVELOPER = "lead_developer", "Lead Developer"
    TECH_LEAD = "tech_lead", "Tech Lead"
    DEVOPS_LEAD = "devops_lead", "DevOps Lead"
    QA = "qa", "QA"
    OPERATIONS = "operations", "Operations"
