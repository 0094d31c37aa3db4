"""Filing, re-planning and cancelling tickets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.choices import REPLANNABLE_STATUSES, ChangeType, RunStatus, TicketStatus
from deployments.lib import validation
from deployments.models import Environment, TerraformRun, Ticket
from deployments.policy import risk
from deployments.selectors import user_roles, votes_for
from deployments.services._base import InputError, infra_repo, locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.followups import emergency_filed
from deployments.services.risk import ticket_risk_refresh
from deployments.services.runs.start import plan_start
from deployments.services.stacks import stack_branch, stack_for_ticket, stack_repo


@dataclass(frozen=True)
class TicketInput:
    """What a person or CI supplies when filing a ticket."""

    title: str
    environment: str
    description: str = ""
    commit_sha: str = ""
    change_type: str = ChangeType.NORMAL
    pull_request_url: str = ""
    risk_assessment: dict[str, Any] | None = None
    rollback_plan: dict[str, Any] | None = None
    scheduled_for: dt.datetime | None = None
    # The stack's name: required when there is more than one (services.stacks).
    stack: str = ""
    # A run trigger's ticket: the upstream deployment that filed it (docs/stacks.md).
    triggered_by: int | None = None


_NEEDS = {
    "description": "a description of the change",
    "risk_assessment": "a risk assessment (impact, likelihood, summary, data_migration, "
    "downtime_expected, customer_facing, tested_in_staging)",
    "rollback_plan": "a rollback plan (steps, expected_minutes, data_considerations)",
}


def ticket_create(*, actor: Any, data: TicketInput, source: str = "web") -> Ticket:
    """File a ticket and start its first plan. Nothing is written when any check fails."""
    title = data.title.strip()
    if not title:
        raise InputError("title", "title is required")
    if validation.line_problem(title):
        raise InputError("title", f"title {validation.LINE_PROBLEM}")
    env = Environment.objects.filter(name=data.environment).first()
    if env is None:
        names = ", ".join(Environment.objects.values_list("name", flat=True))
        raise InputError(
            "environment", f"unknown environment {data.environment!r}; one of: {names}"
        )
    if data.change_type not in ChangeType.values:
        raise InputError(
            "change_type", f"change_type must be one of {', '.join(ChangeType.values)}"
        )
    if data.change_type == ChangeType.ROLLBACK:
        raise InputError(
            "change_type",
            "a rollback is opened from the ticket it rolls back (its page's Roll back button, "
            "or POST /api/v1/tickets/{id}/rollback/), never filed by hand",
        )
    policy.check_may_file(env, user_roles(actor), superuser=bool(actor.is_superuser))
    stack = stack_for_ticket(data.stack)
    # Structured and validated field by field wherever given; required where the
    # environment says so (a missing one is bad input: 400 naming it).
    risk_assessment = (
        risk.clean_risk_assessment(data.risk_assessment) if data.risk_assessment else {}
    )
    rollback_plan = risk.clean_rollback_plan(data.rollback_plan) if data.rollback_plan else {}

    # A stack without a repository of its own is in the portal's (INFRA_REPO).
    repo = stack_repo(stack) if stack.repository else infra_repo()
    given = sha = data.commit_sha.strip().lower()
    try:
        if not sha:
            sha = repo.branch_tip(stack_branch(stack))
        elif not tf.SHA_RE.match(sha):
            raise InputError("commit_sha", "commit_sha must be a full 40-character hex SHA")
        else:
            # A ticket records a commit: an annotated tag's SHA is read as its commit, and
            # anything that names no commit (a tree, a blob, nothing) is refused.
            commit = repo.resolve_commit(sha)
            if commit is None:
                raise InputError(
                    "commit_sha",
                    f"commit_sha must name a commit of the infrastructure repository; {sha} "
                    "does not (a tree, a blob or an unknown object)",
                )
            sha = commit
    except tf.SourceError as exc:
        raise InputError("commit_sha", str(exc)) from exc

    ticket = Ticket(
        title=title[:200],
        description=data.description,
        environment=env,
        stack=stack,
        triggered_by_id=data.triggered_by,
        commit_sha=sha,
        change_type=data.change_type,
        author=actor,
        pull_request_url=data.pull_request_url,
        risk_assessment=risk_assessment,
        rollback_plan=rollback_plan,
        scheduled_for=data.scheduled_for,
        source=source,
    )
    missing = policy.missing_ticket_fields(env, ticket)
    if missing:
        raise InputError(
            missing[0],
            f"{env.name} tickets need {', '.join(missing)}: "
            + "; ".join(_NEEDS[name] for name in missing),
        )
    with transaction.atomic():
        ticket.save()
        audit_record(
            actor=actor,
            action="ticket.create",
            ticket=ticket,
            data={
                "environment": env.name,
                "stack": stack.name,
                "commit_sha": sha,
                "change_type": ticket.change_type,
                "source": source,
                # The SHA given, when it named the commit through an annotated tag.
                **({"commit_sha_given": given} if given and given != sha else {}),
            },
        )
        if policy.is_emergency(ticket):
            emergency_filed(ticket)
        if risk_assessment:
            ticket_risk_refresh(ticket, actor=actor)
        plan_start(ticket, actor=actor)
    return ticket


REPLAN_REASON_MAX = 200


def ticket_plan(*, ticket_id: int, actor: Any, reason: str = "") -> TerraformRun:
    """(Re)plan a ticket. A new plan replaces the current one and voids its approvals, which
    only the author or an approver may do, saying why (the reason is kept on them)."""
    reason = reason.strip()
    if len(reason) > REPLAN_REASON_MAX:
        raise InputError("reason", f"reason must be at most {REPLAN_REASON_MAX} characters")
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        votes = votes_for(ticket)
        now = timezone.now()
        policy.check_may_plan(
            ticket, actor.pk, user_roles(actor), votes=votes, now=now, superuser=actor.is_superuser
        )
        if ticket.status not in REPLANNABLE_STATUSES:
            raise policy.PolicyError(
                f"a ticket that is {ticket.get_status_display().lower()} cannot be re-planned"
            )
        if ticket.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            raise policy.PolicyError("a Terraform run for this ticket is already in progress")
        if policy.replan_voids_approvals(ticket, votes, now=now) and not reason:
            raise InputError(
                "reason", "a new plan voids the standing approvals; give a reason for re-planning"
            )
        return plan_start(ticket, actor=actor, reason=reason)


def ticket_cancel(*, ticket_id: int, actor: Any, reason: str = "") -> Ticket:
    """Withdraw a ticket that is not applying."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        policy.check_may_cancel(ticket, actor.pk, user_roles(actor), superuser=actor.is_superuser)
        transition(ticket, TicketStatus.CANCELLED, actor=actor, reason=reason or "cancelled")
        TerraformRun.objects.filter(ticket=ticket, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
        return ticket
