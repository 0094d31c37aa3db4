"""What a ticket about to be filed will need (issue 22): its risk level from the answers so
far and the approvals the rule asks, by the same code the server applies once it is filed
(policy.risk.score, policy.rule_for). Nothing is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployments import policy
from deployments.choices import ChangeType
from deployments.lib.validation import InputError
from deployments.models import Environment, Ticket
from deployments.policy import risk
from deployments.selectors.access import environments_fileable_by


@dataclass(frozen=True)
class Preview:
    environment: str
    change_type: str
    risk_level: str  # "" where no questionnaire is asked (dev, staging)
    risk_score: int | None
    risk_reasons: tuple[str, ...]
    rule: str  # "a Tech Lead and a DevOps Lead, two different people"
    approvals: int  # how many people
    notes: tuple[str, ...] = field(default=())  # why this rule, what could still change it


def _answers(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The questionnaire as policy.risk reads it, from what the form holds so far."""
    out: dict[str, Any] = {}
    for key in ("impact", "likelihood"):
        value = raw.get(key)
        if value in risk.LEVELS:
            out[key] = value
    for key in risk.QUESTIONS:
        out[key] = raw.get(key) in (True, "on", "true", "1")
    return out


def ticket_preview(
    user: Any,
    *,
    environment: str,
    change_type: str,
    answers: Mapping[str, Any],
    now: dt.datetime,
) -> Preview:
    """The risk level and the approval rule a ticket with these fields would get."""
    env: Environment | None = next(
        (e for e in environments_fileable_by(user) if e.name == environment), None
    )
    if env is None:
        raise InputError("environment", "choose an environment you may file tickets in")
    if change_type not in (ChangeType.NORMAL, ChangeType.EMERGENCY):
        raise InputError("change_type", "choose normal or emergency")
    questionnaire = _answers(answers) if env.requires_change_details else {}
    scored = risk.score(questionnaire, None) if questionnaire else None
    level = scored.level if scored else ""
    ticket = Ticket(
        environment=env,
        change_type=change_type,
        risk={"level": level} if level else {},
        risk_assessment=questionnaire,
        author_id=int(user.pk),
    )
    rule = policy.rule_for(ticket, now=now)
    notes: list[str] = []
    why = policy.risk_rule_note(ticket)
    if why:
        notes.append(why[0].upper() + why[1:] + ".")
    if change_type == ChangeType.EMERGENCY:
        notes.append(
            "An emergency may deploy outside the change window and during a freeze; its risk "
            "is scored for the record."
        )
        later = policy.emergency_escalation_text(env)
        if later and not why:
            notes.append(later[0].upper() + later[1:] + ".")
    elif env.requires_change_details:
        high = policy.risk_rule(env, "high")
        if high is not None and level != "high":
            notes.append(
                f"The plan may still raise the level (deleting or replacing a resource that "
                f"holds data is high risk): a high-risk {env.name} ticket needs "
                f"{high.describe()}."
            )
    return Preview(
        environment=env.name,
        change_type=change_type,
        risk_level=level,
        risk_score=scored.score if scored else None,
        risk_reasons=tuple(scored.reasons) if scored else (),
        rule=rule.describe(),
        approvals=len(rule.slots),
        notes=tuple(notes),
    )
