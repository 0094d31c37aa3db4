"""The events the portal tells people about, which channel takes which, and the
preference groups a person can opt out of (docs/notifications.md has the full table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

# Every event the team Slack channel receives (one message per event, not per person).
SLACK_EVENTS = frozenset(
    {
        "approval.needed",
        "ticket.approved",
        "ticket.rejected",
        "deploy.started",
        "deploy.succeeded",
        "deploy.failed",
        "emergency.filed",
        "followup.due",
        "followup.overdue",
        "drift.detected",
        "monitoring.alarm",
        "rollback.deployed",
        "schedule.missed",
        "schedule.plan_stale",
    }
)

# The events that page the on-call team over SNS (SPEC §1 "Monitoring & Alerts").
ON_CALL_EVENTS = frozenset(
    {"deploy.started", "deploy.failed", "monitoring.alarm", "emergency.filed"}
)
# Of those, the ones that page only for an on-call environment (ONCALL_ENVIRONMENTS, "prod"):
# a dev deploy failing is the author's business, not a page in the night.
ON_CALL_ONLY_IN_ON_CALL_ENVIRONMENTS = frozenset({"deploy.started", "deploy.failed"})

# Email preference groups: a person may switch off each group (settings page).
EVENT_GROUPS: dict[str, str] = {
    "approval.needed": "approvals",
    "ticket.approved": "approvals",
    "ticket.rejected": "approvals",
    "deploy.started": "deploys",
    "deploy.succeeded": "deploys",
    "deploy.failed": "deploys",
    "rollback.deployed": "deploys",
    "schedule.missed": "deploys",
    "schedule.plan_stale": "deploys",
    "schedule.carried": "deploys",
    "followup.due": "followups",
    "followup.overdue": "followups",
    "emergency.filed": "alerts",
    "monitoring.alarm": "alerts",
    "drift.detected": "alerts",
}
GROUP_LABELS: dict[str, str] = {
    "approvals": "Approvals (needs your approval, approved, rejected)",
    "deploys": "Deploys (started, succeeded, failed, rolled back, missed windows)",
    "followups": "Follow-ups (due, overdue)",
    "alerts": "Alerts (drift detected; emergencies and alarms always reach their approvers)",
}
# Sent by email whatever the recipient's preferences: they go only to the people who must
# act now (the approvers of an emergency, the on-call roles of an alarm).
MANDATORY_EMAIL_EVENTS = frozenset({"emergency.filed", "monitoring.alarm"})


def is_on_call(event: str, data: Mapping[str, Any]) -> bool:
    """Does ``event`` (with its data) page the on-call team?"""
    if event not in ON_CALL_EVENTS:
        return False
    if event in ON_CALL_ONLY_IN_ON_CALL_ENVIRONMENTS:
        return str(data.get("environment", "")) in set(settings.ONCALL_ENVIRONMENTS)
    return True


def email_refusal(user: Any, event: str) -> str:
    """Why ``user`` is not emailed about ``event`` ("" = email them), from their preference.

    Reads ``user.preference`` (the settings row, when there is one) without importing the
    domain: a user without a row gets every email."""
    if event in MANDATORY_EMAIL_EVENTS:
        return ""
    try:
        pref = user.preference
    except ObjectDoesNotExist:  # no preference row yet: the defaults (everything on)
        return ""
    if not getattr(pref, "email_enabled", True):
        return "email switched off in the recipient's settings"
    group = EVENT_GROUPS.get(event)
    if group and group in (getattr(pref, "email_opt_out", None) or []):
        return f"the recipient opted out of {group} emails"
    return ""
