"""Incident paths (issue 22): who starts an immediate rollback, and what escalates an
emergency to more approvals. Pure rules over the environment's settings.

Immediate rollbacks: ``Environment.immediate_rollback_start`` says who starts the apply of
an approved immediate rollback (within its hour):

- ``operations`` (the default): the environment's deployers, like every deploy;
- ``approver``: also the lead whose approval made it approved (one person, no one else);
- ``on_approval``: the apply starts by itself the moment the approval is granted.

Emergencies: the risk score is kept for the record, but an emergency needs more than the
environment's emergency rule only when one of the answers listed in
``Environment.emergency_escalating_answers`` holds; it then needs the environment's
high-risk emergency rule (``risk_rules.high.emergency_approval_rule``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deployments.policy.kinds import is_immediate_rollback

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket
    from deployments.policy.rules import Vote

ROLLBACK_START_OPERATIONS = "operations"
ROLLBACK_START_APPROVER = "approver"
ROLLBACK_START_ON_APPROVAL = "on_approval"
ROLLBACK_START_CHOICES = (
    (ROLLBACK_START_OPERATIONS, "The environment's deployers start it"),
    (ROLLBACK_START_APPROVER, "The approving lead (or a deployer) starts it"),
    (ROLLBACK_START_ON_APPROVAL, "It starts by itself when approved"),
)

# The answers (and plan facts) that may escalate an emergency, with what the form and the
# emails say about each.
ESCALATING_ANSWERS: dict[str, str] = {
    "data_migration": "it migrates data",
    "downtime_expected": "downtime is expected",
    "customer_facing": "it is customer-facing",
    "not_tested_in_staging": "it was not tested in staging",
    "high_impact_and_likelihood": "impact and likelihood are both high",
    "destroys_data": "the plan deletes or replaces a resource that holds data",
}
# The default of a new environment (and of existing ones, by migration 0031): what a single
# approver should not accept in a hurry. Customer-facing and untested are what an outage fix
# usually is, so they do not escalate unless an environment says so.
DEFAULT_ESCALATING_ANSWERS = ("data_migration", "destroys_data")


def rollback_start_mode(env: Environment) -> str:
    mode = getattr(env, "immediate_rollback_start", "") or ROLLBACK_START_OPERATIONS
    return mode if mode in dict(ROLLBACK_START_CHOICES) else ROLLBACK_START_OPERATIONS


def lead_starts_rollbacks(env: Environment) -> bool:
    """May an approving lead start an immediate rollback of this environment?"""
    return rollback_start_mode(env) == ROLLBACK_START_APPROVER


def starts_on_approval(ticket: Ticket, now: dt.datetime) -> bool:
    """Does this ticket's apply start by itself once approved?"""
    return is_immediate_rollback(ticket, now) and (
        rollback_start_mode(ticket.environment) == ROLLBACK_START_ON_APPROVAL
    )


def rollback_starter_roles(
    ticket: Ticket, user_id: int | None, votes: Sequence[Vote], *, now: dt.datetime
) -> frozenset[str]:
    """The deployer roles an approving lead holds for this one ticket: the environment's
    deploy groups when it is an immediate rollback (within its hour) of an environment
    whose leads start them, and ``user_id`` approved it; else none."""
    env = ticket.environment
    if (
        user_id is not None
        and lead_starts_rollbacks(env)
        and is_immediate_rollback(ticket, now)
        and any(v.approver_id == user_id and v.roles for v in votes)
    ):
        return frozenset(env.deploy_groups)
    return frozenset()


def escalating_answers(env: Environment) -> tuple[str, ...]:
    raw = getattr(env, "emergency_escalating_answers", None)
    if raw is None:
        return DEFAULT_ESCALATING_ANSWERS
    return tuple(a for a in raw if a in ESCALATING_ANSWERS)


def escalating_answers_problem(value: Any) -> str:
    """Why a stored list is not valid ("" when it is)."""
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        return "must be a list of answer names"
    unknown = sorted(set(value) - set(ESCALATING_ANSWERS))
    if unknown:
        return f"unknown answers {unknown}; use {', '.join(ESCALATING_ANSWERS)}"
    return ""


def _facts(questionnaire: Mapping[str, Any] | None, risk: Mapping[str, Any] | None) -> set[str]:
    q = questionnaire or {}
    facts = {
        key for key in ("data_migration", "downtime_expected", "customer_facing") if q.get(key)
    }
    if q and q.get("tested_in_staging") is not True:
        facts.add("not_tested_in_staging")
    if q.get("impact") == "high" and q.get("likelihood") == "high":
        facts.add("high_impact_and_likelihood")
    blast = (risk or {}).get("blast_radius") or {}
    for key in ("deletes", "replaces"):
        if any(item.get("data_reason") for item in blast.get(key) or []):
            facts.add("destroys_data")
    return facts


def emergency_escalation(
    escalating: Iterable[str],
    questionnaire: Mapping[str, Any] | None,
    risk: Mapping[str, Any] | None,
) -> tuple[str, ...]:
    """The listed answers that hold for this emergency (empty: it is not escalated)."""
    facts = _facts(questionnaire, risk)
    return tuple(a for a in escalating if a in facts)


def escalation_of(ticket: Ticket) -> tuple[str, ...]:
    if ticket.change_type != "emergency":
        return ()
    return emergency_escalation(
        escalating_answers(ticket.environment),
        getattr(ticket, "risk_assessment", None),
        getattr(ticket, "risk", None),
    )


def describe_answers(answers: Iterable[str]) -> str:
    texts = [ESCALATING_ANSWERS[a] for a in answers if a in ESCALATING_ANSWERS]
    if not texts:
        return "nothing"
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]
