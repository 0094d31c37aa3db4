"""What the portal tells people, in one place: the subject, body, link and data of each
event, and who receives it (docs/notifications.md has the events, channels and recipients table).

Each function runs inside the transaction of the change it reports (the services call it
on the line after the transition), so a change that rolls back tells nobody.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from deployments import policy
from deployments.lib import presentation
from deployments.models import Deployment, DriftCheck, Environment, FollowUp, TerraformRun, Ticket
from deployments.selectors import user_roles
from deployments.services._base import InputError
from deployments.services.audit import audit_record
from notifications import events, times
from notifications import service as notifications
from notifications.models import Notification

DEPLOY_ROLES = ("operations",)


def ticket_url(ticket: Ticket) -> str:
    """The absolute link to a ticket's page, for messages (PORTAL_BASE_URL)."""
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    return f"{base}{reverse('ticket_detail', args=[ticket.pk])}"


def _who(actor: Any) -> str:
    if hasattr(actor, "get_username"):
        return str(actor.get_username())
    return str(actor or "system")


def _data(ticket: Ticket, *, actor: Any, what: str, **extra: Any) -> dict[str, Any]:
    """The facts every message carries (Slack shows them as fields)."""
    return {
        "ticket": ticket.pk,
        "title": ticket.title,
        "environment": ticket.environment.name,
        "author": ticket.author.get_username(),
        "actor": _who(actor),
        "what": what,
        "commit_sha": ticket.commit_sha,
        **extra,
    }


def _label(ticket: Ticket) -> str:
    return f"#{ticket.pk} {ticket.title}"


def approval_needed(ticket: Ticket, *, actor: Any = "worker") -> None:
    """The ticket now waits for approval: tell every role that may approve it (policy.rule_for),
    never its author. An emergency's approvers were told when it was filed (emergency.filed)."""
    rule = policy.rule_for(ticket, now=timezone.now())
    if not rule.required:
        return
    if (
        policy.is_emergency(ticket)
        and policy.emergency_notify_roles(ticket.environment)
        and not policy.escalation_of(ticket)  # escalated by its plan: they are told again
    ):
        return
    env = ticket.environment.name
    notifications.notify(
        "approval.needed",
        ticket=ticket,
        roles=sorted(rule.roles),
        exclude=[ticket.author],
        subject=f"Approval needed: {env} {_label(ticket)}",
        body=(
            f"{ticket.author.get_username()}'s change to {env} has a plan waiting for review. "
            f"It needs {rule.describe()}"
            + (f" ({note})" if (note := policy.risk_rule_note(ticket)) else "")
            + ". Review the plan and approve or reject it on the ticket page."
        ),
        url=ticket_url(ticket),
        data=_data(ticket, actor=actor, what="needs approval", rule=rule.describe()),
    )


def ticket_approved(ticket: Ticket, *, actor: Any, who: str) -> None:
    """The last required approval landed: the author may deploy (or ask Operations to)."""
    env = ticket.environment.name
    notifications.notify(
        "ticket.approved",
        ticket=ticket,
        users=[ticket.author],
        subject=f"Approved: {env} {_label(ticket)}",
        body=f"Your change to {env} was approved by {who}. It is ready to deploy.",
        url=ticket_url(ticket),
        data=_data(ticket, actor=actor, what="approved"),
    )


def ticket_rejected(ticket: Ticket, *, actor: Any, reason: str) -> None:
    env = ticket.environment.name
    notifications.notify(
        "ticket.rejected",
        ticket=ticket,
        users=[ticket.author],
        subject=f"Rejected: {env} {_label(ticket)}",
        body=f"{_who(actor)} rejected your change to {env}.\n\nReason: {reason}",
        url=ticket_url(ticket),
        data=_data(ticket, actor=actor, what="rejected", reason=reason),
    )


def emergency_filed(ticket: Ticket) -> None:
    """Every emergency approver of the environment is told at once (both leads for prod)."""
    env = ticket.environment
    roles = policy.emergency_notify_roles(env)
    if not roles:
        return
    author = ticket.author.get_username()
    # The rule that applies now (policy.rule_for): the emergency rule, or the escalated one
    # when an answer the environment lists holds; and what would still escalate it.
    rule = policy.rule_for(ticket, now=timezone.now())
    why = policy.risk_rule_note(ticket)
    rule_text = f"{rule.describe()} ({why})" if why else rule.describe()
    later = "" if why else policy.emergency_escalation_text(env)
    notifications.notify(
        "emergency.filed",
        ticket=ticket,
        roles=sorted(roles),
        subject=f"[EMERGENCY] {env.name}: #{ticket.pk} {ticket.title}",
        body=(
            f"{author} filed an emergency change for {env.name}: it needs {rule_text} and may "
            "deploy outside the change window and freezes."
            + (f" ({later.capitalize()}; the plan is still running.)" if later else "")
            + f"\n\nWhy: {ticket.description or '(no description)'}"
        ),
        url=ticket_url(ticket),
        data=_data(ticket, actor=ticket.author, what="emergency filed"),
    )


def followup_due(ticket: Ticket, follow_up: FollowUp) -> None:
    label = follow_up.get_kind_display()
    due_at = follow_up.due_at
    notifications.notify(
        "followup.due",
        ticket=ticket,
        roles=sorted(policy.FOLLOW_UP_ROLES),
        subject=f"{label} due for #{ticket.pk} {ticket.title}",
        body=(
            f"A {label.lower()} of ticket #{ticket.pk} ({ticket.environment.name}) is due by "
            f"{times.stamp(due_at)}. A Tech Lead or DevOps Lead completes it on the "
            "ticket page."
        ),
        url=ticket_url(ticket),
        data=_data(
            ticket,
            actor="system",
            what=f"{label.lower()} due",
            follow_up=follow_up.pk,
            kind=follow_up.kind,
            due_at=due_at.isoformat(),
        ),
    )


def followup_overdue(ticket: Ticket, follow_up: FollowUp, *, hours: int) -> None:
    label = follow_up.get_kind_display()
    notifications.notify(
        "followup.overdue",
        ticket=ticket,
        roles=sorted(policy.FOLLOW_UP_ROLES),
        subject=f"OVERDUE: {label} for #{ticket.pk} {ticket.title}",
        body=(
            f"The {label.lower()} of ticket #{ticket.pk} ({ticket.environment.name}) was "
            f"due {times.stamp(follow_up.due_at)} ({hours} h ago) and is not done. "
            "A Tech Lead or DevOps Lead completes it on the ticket page."
        ),
        url=ticket_url(ticket),
        data=_data(
            ticket,
            actor="system",
            what=f"{label.lower()} overdue",
            follow_up=follow_up.pk,
            kind=follow_up.kind,
        ),
    )


def schedule_missed(
    ticket: Ticket,
    *,
    people: list[Any],
    reason: str,
    noted: Sequence[tuple[str, dt.datetime]] = (),
) -> None:
    """A scheduled apply will not start: the people who scheduled it, with the reason (the
    times it names, ``noted`` by presentation.noting_times, in each reader's zone)."""
    notifications.notify(
        "schedule.missed",
        ticket=ticket,
        users=people,
        subject=f"#{ticket.pk} {ticket.title} was not deployed in its window",
        body=presentation.restamp(reason, noted, times.stamp),
        url=ticket_url(ticket),
        data=_data(ticket, actor="scheduler", what="missed its window", reason=reason),
    )


def schedule_plan_stale(ticket: Ticket, *, people: list[Any], reason: str) -> None:
    """A scheduled ticket's plan went stale (another deploy): who scheduled it, at once."""
    notifications.notify(
        "schedule.plan_stale",
        ticket=ticket,
        users=people,
        subject=f"Stale plan: #{ticket.pk} {ticket.title} needs a re-plan before its slot",
        body=reason,
        url=ticket_url(ticket),
        data=_data(ticket, actor="worker", what="plan went stale", reason=reason),
    )


def schedule_carried(ticket: Ticket, *, people: list[Any], text: str) -> None:
    """What became of a slot kept across a re-plan (pending, set again, or not kept)."""
    notifications.notify(
        "schedule.carried",
        ticket=ticket,
        users=people,
        subject=f"Schedule of #{ticket.pk} {ticket.title}",
        body=text,
        url=ticket_url(ticket),
        data=_data(ticket, actor="scheduler", what="schedule after re-plan", reason=text),
    )


def _quiet(ticket: Ticket) -> bool:
    """An environment the portal deploys by itself (dev): its deploys reach Slack only,
    except a failure, which its author hears about."""
    return policy.auto_deploys(ticket.environment)


def deploy_started(ticket: Ticket, run: TerraformRun, *, actor: Any) -> None:
    """An apply was queued: the author and Operations (an on-call environment also pages SNS)."""
    env = ticket.environment.name
    quiet = _quiet(ticket)
    plan_sha = run.plan.plan_sha256 if run.plan else ""
    notifications.notify(
        "deploy.started",
        ticket=ticket,
        users=() if quiet else [ticket.author],
        roles=() if quiet else DEPLOY_ROLES,
        subject=f"Deploying to {env}: {_label(ticket)}",
        body=(
            f"{_who(actor)} started the apply of plan {plan_sha[:12]} "
            f"(commit {run.commit_sha[:12]}) to {env}."
        ),
        url=ticket_url(ticket),
        data=_data(ticket, actor=actor, what="deploy started", run=run.pk),
    )


def deploy_succeeded(ticket: Ticket, run: TerraformRun) -> None:
    env = ticket.environment.name
    quiet = _quiet(ticket)
    notifications.notify(
        "deploy.succeeded",
        ticket=ticket,
        users=() if quiet else [ticket.author],
        roles=() if quiet else DEPLOY_ROLES,
        subject=f"Deployed to {env}: {_label(ticket)}",
        body=f"Commit {run.commit_sha[:12]} is applied to {env}; the ticket is being monitored.",
        url=ticket_url(ticket),
        data=_data(ticket, actor=_requester(run), what="deploy succeeded", run=run.pk),
    )


def deploy_failed(ticket: Ticket, run: TerraformRun | None, *, reason: str) -> None:
    """An apply (or its post-apply check) failed: the author always, Operations too outside
    auto-deploying environments; an on-call environment also pages SNS."""
    env = ticket.environment.name
    quiet = _quiet(ticket)
    notifications.notify(
        "deploy.failed",
        ticket=ticket,
        users=[ticket.author],
        roles=() if quiet else DEPLOY_ROLES,
        subject=f"Deploy FAILED in {env}: {_label(ticket)}",
        body=f"The deploy of commit {ticket.commit_sha[:12]} to {env} failed: {reason}",
        url=ticket_url(ticket),
        data=_data(
            ticket,
            actor=_requester(run) if run else "system",
            what="deploy failed",
            run=run.pk if run else None,
            reason=reason[:1000],
        ),
    )


def _requester(run: TerraformRun) -> Any:
    return run.requested_by or "system"


# Monitoring alarms go to whoever may act on them, and to the author.
ALARM_ROLES = ("operations", "tech_lead", "devops_lead")
# Drift goes to those who own the environments' state.
DRIFT_NOTIFY_ROLES = ("devops_lead", "operations")


def monitoring_alarm(ticket: Ticket, *, reason: str, failing: list[str]) -> None:
    """A probe of the monitoring period failed: roll back, or acknowledge once it passes."""
    env = ticket.environment.name
    notifications.notify(
        "monitoring.alarm",
        ticket=ticket,
        roles=ALARM_ROLES,
        users=[ticket.author],
        subject=f"[ALARM] {env}: #{ticket.pk} {ticket.title}",
        body=(
            f"Monitoring of ticket #{ticket.pk} ({env}, commit {ticket.short_sha}) found a "
            f"problem after its deploy:\n\n{reason}\n\nRoll back from the ticket page, or, once "
            "every probe passes again, operations acknowledges the alarm with a note."
        ),
        url=f"{ticket_url(ticket)}#rollback",
        data={"environment": env, "failing": failing},
    )


def monitoring_recovered(ticket: Ticket, *, alarm_reason: str) -> None:
    """Every probe passes again after an alarm (said once per alarm)."""
    env = ticket.environment.name
    notifications.notify(
        "monitoring.recovered",
        ticket=ticket,
        roles=ALARM_ROLES,
        users=[ticket.author],
        subject=f"[RECOVERED] {env}: #{ticket.pk} {ticket.title}",
        body=(
            f"Every probe of ticket #{ticket.pk} ({env}) passes again after the alarm "
            f"({alarm_reason}). Roll back, or operations acknowledges the alarm with a "
            "note on the ticket page before completing it."
        ),
        url=f"{ticket_url(ticket)}#monitoring",
        data={"environment": env},
    )


def drift_detected(
    env: Environment,
    *,
    check: DriftCheck,
    deployment: Deployment,
    counts: dict[str, int],
    resources: list[str],
) -> None:
    """A drift check found the environment changed outside the portal."""
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    listed = ", ".join(resources[:10]) + (" …" if len(resources) > 10 else "")
    notifications.notify(
        "drift.detected",
        roles=DRIFT_NOTIFY_ROLES,
        subject=f"[DRIFT] {env.name} no longer matches its last deployment",
        body=(
            f"A plan of {env.name}'s last deployed commit {deployment.commit_sha[:12]} "
            f"(deployment #{deployment.pk}, ticket #{deployment.ticket_id}) would add "
            f"{counts['add']}, change {counts['change']} and destroy {counts['destroy']}: "
            f"someone changed the environment outside the portal.\n\nDrifted: {listed}"
        ),
        url=f"{base}{reverse('environment_list')}#drift-{env.name}",
        data={
            "environment": env.name,
            "summary": {**counts, "resources": resources},
            "drift_check": check.pk,
            "deployment": deployment.pk,
        },
    )


def rollback_opened(
    ticket: Ticket,
    *,
    actor: Any,
    original: Ticket,
    target: Deployment,
    mode: str,
    rule: policy.Rule,
) -> None:
    """A rollback ticket was opened: whoever may approve it is told."""
    env = ticket.environment
    notifications.notify(
        "rollback.opened",
        ticket=ticket,
        roles=sorted(rule.roles),
        subject=f"[ROLLBACK] {env.name}: #{ticket.pk} {ticket.title}",
        body=(
            f"{actor.get_username()} opened a {mode} rollback of ticket #{original.pk} "
            f"to deployment #{target.pk} (commit {target.commit_sha[:12]}, ticket "
            f"#{target.ticket_id}). It needs {rule.describe()}."
        ),
        url=ticket_url(ticket),
        data={"environment": env.name, "rollback_of": original.pk, "mode": mode},
    )


def rollback_deployed(
    ticket: Ticket, *, original: Ticket, reason: str, follow_up: FollowUp
) -> None:
    """A rollback deployed: the leads owe the original ticket a post-mortem."""
    notifications.notify(
        "rollback.deployed",
        ticket=original,
        roles=sorted(policy.FOLLOW_UP_ROLES),
        subject=f"Rolled back: {original.environment.name} #{original.pk} {original.title}",
        body=(
            f"Rollback ticket #{ticket.pk} deployed: {reason}. A post-mortem of ticket "
            f"#{original.pk} is due by {times.stamp(follow_up.due_at)}."
        ),
        url=ticket_url(original),
        data={
            "environment": original.environment.name,
            "rollback": ticket.pk,
            "commit_sha": ticket.commit_sha,
            "follow_up": follow_up.pk,
        },
    )


# --- failed notifications: retried by a person --------------------------------------


def notification_retry(*, notification_id: int, actor: Any) -> Notification:
    """Operations or a lead puts a failed notification back in the queue (audited); 403 for
    others, 409 when it is not failed. Sent after commit with a fresh set of attempts."""
    policy.check_may_see_notification_log(
        user_roles(actor), superuser=bool(getattr(actor, "is_superuser", False))
    )
    with transaction.atomic():
        requeued = notifications.requeue_failed(notification_id)
        if requeued is None:
            raise policy.PolicyError("only a failed notification can be retried")
        row, attempts, error = requeued
        audit_record(
            actor=actor,
            action="notification.retry",
            ticket=row.ticket,
            data={
                "notification": row.pk,
                "event": row.event,
                "channel": row.channel,
                "address": row.address,
                "attempts": attempts,
                "last_error": error[:500],
            },
        )
        return row


# --- a person's email preferences ---------------------------------------------------


def email_preferences_set(*, actor: Any, email_enabled: bool, groups: list[str]) -> Any:
    """Store which emails ``actor`` wants: ``groups`` are the event groups to receive
    (notifications.events.GROUP_LABELS); the others are opted out. Audited."""
    from deployments.models import UserPreference

    unknown = sorted(set(groups) - set(events.GROUP_LABELS))
    if unknown:
        raise InputError("groups", f"unknown notification groups: {', '.join(unknown)}")
    opt_out = sorted(set(events.GROUP_LABELS) - set(groups))
    with transaction.atomic():
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=actor)
        pref.email_enabled = bool(email_enabled)
        pref.email_opt_out = opt_out
        pref.save(update_fields=["email_enabled", "email_opt_out", "updated_at"])
        audit_record(
            actor=actor,
            action="preference.notifications",
            data={"email_enabled": pref.email_enabled, "email_opt_out": opt_out},
        )
        return pref
