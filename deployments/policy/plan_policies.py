"""Rego policies over a plan: what their results decide (docs/policies.md).

Each policy result has a level (advisory, soft, hard) and an outcome (pass, warn, fail,
error). An error (syntax, runtime, time-out) fails closed: it blocks like a hard failure.
A soft failure blocks until the role the policy names overrides it, for that plan's
SHA-256 only. Pure rules: facts in, answers or a PolicyError out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployments.choices import Role, TicketStatus
from deployments.lib.presentation import role_label
from deployments.policy.errors import ApplyRefused, PolicyError

LEVELS = ("advisory", "soft", "hard")
DEFAULT_OVERRIDE_ROLE = Role.DEVOPS_LEAD.value


@dataclass(frozen=True)
class PolicyFinding:
    """One policy's result on one plan, as the rules read it."""

    policy: str
    source: str
    level: str
    outcome: str
    messages: tuple[str, ...] = ()
    override_role: str = ""

    @property
    def blocks_hard(self) -> bool:
        return self.outcome == "error" or (self.outcome == "fail" and self.level == "hard")

    @property
    def needs_override(self) -> bool:
        return self.outcome == "fail" and self.level == "soft"


def stricter(level: str, floor: str) -> str:
    """The stricter of two levels: a repository policy is never below its portal floor."""
    return max(level, floor, key=lambda name: LEVELS.index(name) if name in LEVELS else 2)


def outcome_of(*, deny: Sequence[str], warn: Sequence[str], error: str) -> str:
    if error:
        return "error"
    if deny:
        return "fail"
    if warn:
        return "warn"
    return "pass"


def applies_to(environments: Iterable[str], environment: str) -> bool:
    names = list(environments)
    return not names or "*" in names or environment in names


def override_role_of(finding: PolicyFinding) -> str:
    return finding.override_role or DEFAULT_OVERRIDE_ROLE


def policy_status(
    findings: Sequence[PolicyFinding] | None, overridden: Collection[str] = ()
) -> str | None:
    """``blocked`` (a hard failure or an error), ``override_needed`` (a soft failure not
    overridden for this plan), ``warnings`` (warnings, advisory failures, overridden soft
    failures), ``passed``; None when the plan was not evaluated."""
    if findings is None:
        return None
    if any(f.blocks_hard for f in findings):
        return "blocked"
    if any(f.needs_override and f.policy not in overridden for f in findings):
        return "override_needed"
    if any(f.outcome in ("warn", "fail") for f in findings):
        return "warnings"
    return "passed"


def _describe(finding: PolicyFinding) -> str:
    what = "failed" if finding.outcome == "fail" else "could not be evaluated"
    messages = "; ".join(finding.messages[:5]) or "no message"
    return f"policy {finding.policy} ({finding.source}, {finding.level}) {what}: {messages}"


def _refusal_data(findings: Sequence[PolicyFinding]) -> dict[str, Any]:
    return {
        "policies": [
            {
                "policy": f.policy,
                "source": f.source,
                "level": f.level,
                "outcome": f.outcome,
                "messages": list(f.messages),
                **({"override_role": override_role_of(f)} if f.needs_override else {}),
            }
            for f in findings
        ]
    }


def policy_refusal(
    findings: Sequence[PolicyFinding] | None, overridden: Collection[str] = ()
) -> str:
    """The sentence that refuses approving or deploying this plan, or "" when its
    policies let it through."""
    if not findings:
        return ""
    hard = [f for f in findings if f.blocks_hard]
    if hard:
        return "the plan is blocked by " + "; ".join(_describe(f) for f in hard)
    soft = [f for f in findings if f.needs_override and f.policy not in overridden]
    if soft:
        return "the plan needs a policy override: " + "; ".join(
            f"{_describe(f)} (an override by {role_label(override_role_of(f))} with a reason)"
            for f in soft
        )
    return ""


def check_plan_policies(
    findings: Sequence[PolicyFinding] | None, overridden: Collection[str] = ()
) -> None:
    """Approving and deploying: refused (409, the policies and their messages in the body)
    while a hard failure, an error or a soft failure without its override stands."""
    message = policy_refusal(findings, overridden)
    if message:
        blocking = [
            f
            for f in findings or ()
            if f.blocks_hard or (f.needs_override and f.policy not in overridden)
        ]
        raise PolicyError(message, data=_refusal_data(blocking))


def check_apply_policies(
    findings: Sequence[PolicyFinding] | None, overridden: Collection[str] = ()
) -> None:
    """The apply's start-time re-check: the same decision, as an ApplyRefused."""
    message = policy_refusal(findings, overridden)
    if message:
        raise ApplyRefused(message, back_to=TicketStatus.AWAITING_APPROVAL)


def check_may_override(
    findings: Sequence[PolicyFinding] | None,
    *,
    policy_name: str,
    plan_sha256: str,
    current_plan_sha256: str,
    user_id: int,
    author_id: int,
    user_roles: Collection[str],
    overridden: Collection[str] = (),
) -> PolicyFinding:
    """May this person override ``policy_name`` for the plan whose digest they name? The
    finding overridden, or a PolicyError: a digest that is not the current plan's (a
    re-plan voids overrides like approvals), a policy that is not a soft failure of it, the
    ticket's author, or someone without the role the policy names."""
    if not current_plan_sha256:
        raise PolicyError("the ticket has no successful plan to override a policy of")
    if plan_sha256 != current_plan_sha256:
        raise PolicyError(
            f"plan_sha256 {plan_sha256[:12] or '(empty)'}… is not the ticket's current plan "
            f"({current_plan_sha256[:12]}…); overrides are bound to one plan"
        )
    finding = next((f for f in findings or () if f.policy == policy_name), None)
    if finding is None:
        raise PolicyError(f"no policy named {policy_name!r} was evaluated on this plan")
    if finding.blocks_hard:
        raise PolicyError(
            f"policy {policy_name} is a hard failure (or could not be evaluated): "
            "it cannot be overridden; change the commit or the policy"
        )
    if not finding.needs_override:
        raise PolicyError(
            f"policy {policy_name} did not fail at the soft level: nothing to override"
        )
    if policy_name in overridden:
        raise PolicyError(f"policy {policy_name} is already overridden for this plan")
    if user_id == author_id:
        raise PolicyError(
            "the ticket's author cannot override its policies", kind=PolicyError.ACTOR
        )
    role = override_role_of(finding)
    if role not in user_roles:
        raise PolicyError(
            f"only a {role_label(role)} may override policy {policy_name}",
            kind=PolicyError.ACTOR,
        )
    return finding


def override_needs(
    findings: Sequence[PolicyFinding] | None, overridden: Collection[str]
) -> list[Mapping[str, str]]:
    """For the approve panel: each soft failure still to override, and by whom."""
    return [
        {
            "policy": f.policy,
            "role": override_role_of(f),
            "role_label": role_label(override_role_of(f)),
        }
        for f in findings or ()
        if f.needs_override and f.policy not in overridden
    ]
