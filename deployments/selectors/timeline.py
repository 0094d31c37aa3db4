"""A ticket's timeline for its page: filed → planned → policy and checks → approvals →
scheduled → applied → monitoring → completed (or rolled back, failed, rejected,
cancelled), each step with who, when and how long, read from what is already recorded
(the runs, the approvals, the checks and the audit trail's transitions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from deployments import policy
from deployments.choices import (
    ACTIVE_RUN_STATUSES,
    TERMINAL_STATUSES,
    RunKind,
    RunStatus,
    TicketStatus,
)
from deployments.lib.presentation import duration, role_label
from deployments.models import Approval, AuditEvent, TerraformRun, Ticket
from deployments.terraform.summary import summary_line

DONE, CURRENT, PENDING, FAILED, SKIPPED = "done", "current", "pending", "failed", "skipped"
_STATE_LABELS = {
    DONE: "done",
    CURRENT: "in progress",
    PENDING: "not yet",
    FAILED: "failed",
    SKIPPED: "not needed",
}


@dataclass(frozen=True)
class TimelineStep:
    key: str
    label: str
    state: str
    who: str = ""
    at: dt.datetime | None = None
    took: dt.timedelta | None = None
    detail: str = ""

    @property
    def state_label(self) -> str:
        return _STATE_LABELS[self.state]

    @property
    def took_text(self) -> str:
        if self.took is None:
            return ""
        seconds = self.took.total_seconds()
        if seconds < 60:
            return f"{max(0, round(seconds))} s"
        return duration(self.took)


def _transitions(events: list[AuditEvent]) -> list[tuple[dt.datetime, str, str]]:
    return [
        (e.at, e.actor_name, str((e.data or {}).get("to", "")))
        for e in events
        if e.action == "ticket.transition"
    ]


def _last_to(transitions: list[tuple[dt.datetime, str, str]], *statuses: str) -> Any:
    found = [t for t in transitions if t[2] in statuses]
    return found[-1] if found else None


def _run_step(key: str, label: str, run: TerraformRun | None, detail: str = "") -> TimelineStep:
    if run is None:
        return TimelineStep(key, label, PENDING)
    who = run.requested_by.get_username() if run.requested_by is not None else "the portal"
    if run.status in ACTIVE_RUN_STATUSES:
        return TimelineStep(key, label, CURRENT, who, run.started_at or run.created_at)
    state = DONE if run.status == RunStatus.SUCCEEDED else FAILED
    text = detail if state == DONE else (run.error or run.get_status_display())
    return TimelineStep(
        key, label, state, who, run.finished_at or run.created_at, run.duration, text
    )


def ticket_timeline(
    ticket: Ticket,
    *,
    runs: list[TerraformRun],
    approvals: list[Approval],
    approval_status: dict[str, Any],
    check_groups: list[dict[str, object]],
    events: list[AuditEvent],
    now: dt.datetime,
) -> list[TimelineStep]:
    status = TicketStatus(ticket.status)
    transitions = _transitions(events)
    steps = [TimelineStep("filed", "Filed", DONE, ticket.author.get_username(), ticket.created_at)]

    # Planned: the current plan, else the newest plan run (a failure, or one running).
    plans = [r for r in runs if r.kind == RunKind.PLAN]
    plan = ticket.current_plan or (plans[0] if plans else None)
    planned = _run_step(
        "planned", "Planned", plan, summary_line(plan.summary) if plan and plan.summary else ""
    )
    steps.append(planned)

    # Policy and checks: the risk level, the required checks.
    parts = []
    level = (ticket.risk or {}).get("level")
    if level:
        parts.append(f"risk {level}")
    required = [g for g in check_groups if g.get("required")]
    passed = [g for g in required if getattr(g.get("latest"), "status", "") == "passed"]
    failing = [g for g in required if getattr(g.get("latest"), "status", "") == "failed"]
    if required:
        parts.append(f"{len(passed)} of {len(required)} required checks passed")
    others = len(check_groups) - len(required)
    if others:
        parts.append(f"{others} other check{'s' if others != 1 else ''} reported")
    latest_check = max(
        (g["latest"].created_at for g in check_groups if g.get("latest") is not None),  # type: ignore[attr-defined]
        default=None,
    )
    if planned.state != DONE:
        checks_state = PENDING
    elif failing:
        checks_state = FAILED
    elif len(passed) < len(required):
        checks_state = CURRENT
    else:
        checks_state = DONE
    steps.append(
        TimelineStep(
            "checks",
            "Policy and checks",
            checks_state,
            at=latest_check or (plan.finished_at if plan and checks_state == DONE else None),
            detail="; ".join(parts) or "no checks required",
        )
    )

    # Approvals.
    standing = [a for a in approvals if not a.is_void]
    if not approval_status.get("required"):
        steps.append(TimelineStep("approvals", "Approvals", SKIPPED, detail="none required"))
    else:
        who = ", ".join(f"{a.approver.get_username()} ({role_label(a.role)})" for a in standing)
        last = max((a.created_at for a in standing), default=None)
        rejected = status == TicketStatus.REJECTED
        if approval_status.get("met"):
            state = DONE
        elif rejected:
            state = FAILED
        elif status == TicketStatus.AWAITING_APPROVAL:
            state = CURRENT
        else:
            state = PENDING
        detail = (
            "rejected"
            if rejected
            else approval_status.get("rule", "")
            if state == DONE
            else f"still needed: {approval_status.get('missing_text', '')}"
        )
        since = plan.finished_at if plan is not None and plan.finished_at else None
        took = last - since if state == DONE and last and since and last >= since else None
        steps.append(TimelineStep("approvals", "Approvals", state, who, last, took, detail))

    # Scheduled (only when it was).
    scheduled = [e for e in events if e.action in ("ticket.schedule", "ticket.reschedule")]
    if scheduled or ticket.scheduled_for:
        event = scheduled[-1] if scheduled else None
        state = CURRENT if status == TicketStatus.SCHEDULED else DONE
        detail = ""
        if ticket.scheduled_for:
            detail = "window start"  # the template shows the time in the viewer's zone
        steps.append(
            TimelineStep(
                "scheduled",
                "Scheduled",
                state,
                event.actor_name if event else "",
                ticket.scheduled_for or (event.at if event else None),
                detail=detail,
            )
        )

    # Applied.
    applies = [r for r in runs if r.kind == RunKind.APPLY]
    steps.append(_run_step("applied", "Applied", applies[0] if applies else None))

    # Monitoring (where the environment watches after an apply).
    into = [i for i, t in enumerate(transitions) if t[2] == TicketStatus.MONITORING]
    monitored = transitions[into[-1]] if into else None
    if monitored or status == TicketStatus.MONITORING:
        # It ends with the ticket's next move (completed, a failed check, rolled back),
        # not with a rollback days after it completed.
        ended = transitions[into[-1] + 1] if into and into[-1] + 1 < len(transitions) else None
        start = monitored[0] if monitored else None
        state = CURRENT if status == TicketStatus.MONITORING else DONE
        if ended and ended[2] == TicketStatus.APPLY_FAILED:
            state = FAILED  # a check failed while it watched
        took = (ended[0] - start) if ended and start and ended[0] >= start else None
        if state == CURRENT and start:
            took = now - start
        steps.append(TimelineStep("monitoring", "Monitoring", state, "", start, took))
    elif not policy.auto_deploys(ticket.environment) and status not in (
        TicketStatus.COMPLETED,
        *TERMINAL_STATUSES,  # ended: rejected, cancelled, rolled back (an apply that failed)
    ):
        steps.append(TimelineStep("monitoring", "Monitoring", PENDING))

    # The end.
    end_states = {
        TicketStatus.COMPLETED: ("Completed", DONE),
        TicketStatus.ROLLED_BACK: ("Rolled back", FAILED),
        TicketStatus.REJECTED: ("Rejected", FAILED),
        TicketStatus.CANCELLED: ("Cancelled", FAILED),
        TicketStatus.PLAN_FAILED: ("Plan failed", FAILED),
        TicketStatus.APPLY_FAILED: ("Apply failed", FAILED),
    }
    if status in end_states:
        label, state = end_states[status]
        ended = _last_to(transitions, status)
        at = ticket.completed_at if status == TicketStatus.COMPLETED else None
        at = at or (ended[0] if ended else ticket.status_changed_at)
        who = ended[1] if ended else ""
        took = at - ticket.created_at if at and status == TicketStatus.COMPLETED else None
        steps.append(TimelineStep("end", label, state, who, at, took, ticket.status_reason or ""))
    else:
        steps.append(TimelineStep("end", "Completed", PENDING))
    return steps
