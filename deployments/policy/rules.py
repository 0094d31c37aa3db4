"""Approval rules as data: who must approve (Rule), the standing votes (Vote), whether they
meet the rule (quorum), and which rule applies to a ticket now (rule_for: the emergency
rule, an immediate rollback's one lead, or the environment's rule for the risk level)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployments.choices import Role
from deployments.lib.presentation import article, role_label
from deployments.policy.incidents import describe_answers, escalating_answers, escalation_of
from deployments.policy.kinds import (
    is_immediate_rollback,
)
from deployments.policy.roles import (
    ROLLBACK_APPROVER_ROLES,
)
from deployments.policy.windows import Window

if TYPE_CHECKING:
    from deployments.models import Environment, Ticket


@dataclass(frozen=True)
class Rule:
    """Who must approve: every role in ``all_of`` (one person each) plus ``count`` people
    holding any role in ``any_of``. Stored on the environment as JSON; ``{}`` is none."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    count: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> Rule:
        """Validate the stored form; ValueError names what is wrong."""
        data = dict(data or {})
        unknown = set(data) - {"all_of", "any_of", "count"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; use all_of, any_of and count")
        all_of = tuple(data.get("all_of") or ())
        any_of = tuple(data.get("any_of") or ())
        for role in (*all_of, *any_of):
            if role not in Role.values:
                raise ValueError(f"unknown role {role!r}; one of {', '.join(Role.values)}")
        if len(set(all_of)) != len(all_of):
            raise ValueError("all_of names a role twice")
        raw_count = data.get("count", 1 if any_of else 0)
        if not isinstance(raw_count, int) or isinstance(raw_count, bool) or raw_count < 0:
            raise ValueError("count must be a whole number")
        if any_of and raw_count < 1:
            raise ValueError("any_of needs a count of at least 1")
        if raw_count and not any_of:
            raise ValueError("count needs any_of")
        return cls(all_of=all_of, any_of=any_of, count=raw_count if any_of else 0)

    @property
    def slots(self) -> tuple[frozenset[str], ...]:
        """One slot per required person, each naming the roles that may fill it."""
        return tuple(frozenset({role}) for role in self.all_of) + tuple(
            frozenset(self.any_of) for _ in range(self.count)
        )

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.all_of) | frozenset(self.any_of)

    @property
    def required(self) -> bool:
        return bool(self.slots)

    def describe(self) -> str:
        parts: list[str] = []
        if self.all_of:
            labels = [role_label(r) for r in self.all_of]
            text = " and ".join(labels)
            if len(labels) > 1:
                text += ", two different people" if len(labels) == 2 else ", different people"
            parts.append(text)
        if self.any_of:
            who = " or ".join(role_label(r) for r in self.any_of)
            plural = "s" if self.count != 1 else ""
            parts.append(f"{self.count} approval{plural} from {article(who)}")
        return "; plus ".join(parts) if parts else "no approval required"


def describe_rule(rule: Mapping[str, Any] | None) -> str:
    """A sentence for an approval rule stored as data on the environment."""
    try:
        return Rule.parse(rule).describe()
    except ValueError as exc:
        return f"an invalid rule ({exc})"


@dataclass(frozen=True)
class Vote:
    """A standing (not void) approval, as far as the rules care."""

    approver_id: int
    approver_name: str
    # The rule's roles the approver held when approving and still holds (selectors.votes_for);
    # empty once they lost them all or were deactivated.
    roles: frozenset[str]
    role: str = ""  # the role it was recorded under (kept when still possible)


def assign(rule: Rule, votes: Sequence[Vote]) -> list[int] | None:
    """Give each vote its own slot (index into ``rule.slots``), or None if impossible.

    A person counts once, whatever roles they hold. Recorded roles are kept when a
    full assignment allows it; otherwise a dual-role approver moves to the role only
    they can fill, so an order of approvals never blocks a quorum that exists.
    """
    slots = rule.slots
    taken: list[int | None] = [None] * len(slots)
    result: list[int] = [-1] * len(votes)

    def options(vote: Vote) -> list[int]:
        fits = [i for i, slot in enumerate(slots) if slot & vote.roles]
        return sorted(fits, key=lambda i: (vote.role not in slots[i] or vote.role == "", i))

    def place(index: int) -> bool:
        if index == len(votes):
            return True
        for slot in options(votes[index]):
            if taken[slot] is None:
                taken[slot], result[index] = index, slot
                if place(index + 1):
                    return True
                taken[slot] = None
        return False

    if len({v.approver_id for v in votes}) != len(votes):
        return None
    return result if place(0) else None


def slot_role(rule: Rule, slot: int, vote: Vote) -> str:
    """The role a vote counts for in a slot: its recorded one if it fits, else the first held."""
    allowed = rule.slots[slot]
    if vote.role in allowed and vote.role in vote.roles:
        return vote.role
    ordered = [*rule.all_of, *rule.any_of]
    return next(role for role in ordered if role in allowed and role in vote.roles)


@dataclass(frozen=True)
class Quorum:
    met: bool
    counted: tuple[tuple[Vote, str], ...]  # each standing vote and the role it counts for
    missing: tuple[str, ...]  # labels of the roles still needed, one per missing person

    def describe_missing(self) -> str:
        if not self.missing:
            return "nobody"
        return " and ".join(article(label) for label in self.missing)


def counting(rule: Rule, votes: Sequence[Vote]) -> list[Vote]:
    """The votes that can count for ``rule``: those whose approver still holds one of its
    roles (votes carry the roles held *now*, see selectors.votes_for); an approver who lost
    every such role, or was deactivated, counts for nothing until the plan is approved again."""
    return [vote for vote in votes if vote.roles & rule.roles]


def quorum(rule: Rule, votes: Sequence[Vote]) -> Quorum:
    """Is the rule satisfied by these votes (those that count), and who is still needed."""
    votes = counting(rule, votes)
    placement = assign(rule, votes)
    if placement is None:
        # Cannot happen for votes accepted by check_may_approve; be explicit anyway.
        return Quorum(met=False, counted=(), missing=tuple(_slot_label(s) for s in rule.slots))
    filled = set(placement)
    counted = tuple(
        (vote, slot_role(rule, slot, vote)) for vote, slot in zip(votes, placement, strict=True)
    )
    missing = tuple(_slot_label(slot) for i, slot in enumerate(rule.slots) if i not in filled)
    return Quorum(met=not missing, counted=counted, missing=missing)


def _slot_label(slot: frozenset[str]) -> str:
    return " or ".join(sorted(role_label(r) for r in slot))


def rule_roles(data: Mapping[str, Any] | None) -> frozenset[str]:
    try:
        return Rule.parse(data).roles
    except ValueError:
        return frozenset()


def approver_roles(env: Environment) -> frozenset[str]:
    """Every role that may approve some ticket of the environment (normal or emergency)."""
    return rule_roles(env.approval_rule) | rule_roles(env.emergency_approval_rule)


RISK_LEVELS = ("low", "medium", "high")


RISK_RULE_FIELDS = ("approval_rule", "emergency_approval_rule")


def _risk_level(ticket: Ticket) -> str:
    risk = getattr(ticket, "risk", None)
    risk = risk if isinstance(risk, dict) else {}
    level = risk.get("level", "")
    return level if level in RISK_LEVELS else ""


def parse_risk_rules(data: Mapping[str, Any] | None) -> dict[str, dict[str, Rule]]:
    """Validate an environment's ``risk_rules``: {level: {approval_rule|emergency_approval_rule:
    rule}}; ValueError names what is wrong."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("risk_rules must be an object keyed by risk level")
    parsed: dict[str, dict[str, Rule]] = {}
    for level, rules in data.items():
        if level not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {level!r}; one of {', '.join(RISK_LEVELS)}")
        if not isinstance(rules, Mapping):
            raise ValueError(f"risk_rules.{level} must be an object")
        unknown = set(rules) - set(RISK_RULE_FIELDS)
        if unknown:
            raise ValueError(
                f"risk_rules.{level}: unknown keys {sorted(unknown)}; use "
                f"{' and '.join(RISK_RULE_FIELDS)}"
            )
        parsed[level] = {}
        for field, rule in rules.items():
            if not isinstance(rule, Mapping):
                raise ValueError(f"risk_rules.{level}.{field} must be an approval rule object")
            try:
                parsed[level][field] = Rule.parse(rule)
            except ValueError as exc:
                raise ValueError(f"risk_rules.{level}.{field}: {exc}") from None
    return parsed


def risk_rule(env: Environment, level: str, field: str = "approval_rule") -> Rule | None:
    """The rule the environment sets for tickets of ``level`` instead of ``field``, if any.
    An unparseable stored value is ignored here (environment_validate refuses it)."""
    try:
        return parse_risk_rules(getattr(env, "risk_rules", None) or {}).get(level, {}).get(field)
    except ValueError:
        return None


def risk_rule_note(ticket: Ticket) -> str:
    """Why the ticket needs more than the environment's usual rule, or ""."""
    level = _risk_level(ticket)
    field = _base_rule_field(ticket)
    if field == "emergency_approval_rule":
        return emergency_note(ticket)
    override = risk_rule(ticket.environment, level, field)
    if override is None:
        return ""
    try:
        usual = Rule.parse(getattr(ticket.environment, field)).describe()
    except ValueError:
        usual = "its usual rule"
    kind = "emergency " if field == "emergency_approval_rule" else ""
    return (
        f"the assessed risk is {level}, so this {kind}{ticket.environment.name} ticket needs "
        f"{override.describe()} instead of {usual}"
    )


def emergency_note(ticket: Ticket) -> str:
    """Why an emergency needs more than the environment's emergency rule, or ""."""
    env = ticket.environment
    held = escalation_of(ticket)
    override = risk_rule(env, "high", "emergency_approval_rule") if held else None
    if override is None:
        return ""
    usual = describe_rule(env.emergency_approval_rule)
    return (
        f"this emergency needs {override.describe()} instead of {usual} because "
        f"{describe_answers(held)} ({env.name} escalates an emergency when "
        f"{describe_answers(escalating_answers(env))})"
    )


def emergency_escalation_text(env: Environment) -> str:
    """What escalates an emergency of ``env``, for the form and the emails: "prod escalates
    an emergency to <rule> when it migrates data or ..." ("" when nothing does)."""
    answers = escalating_answers(env)
    override = risk_rule(env, "high", "emergency_approval_rule")
    if not answers or override is None:
        return ""
    return (
        f"{env.name} escalates an emergency to {override.describe()} when "
        f"{describe_answers(answers)}"
    )


def _emergency_override(ticket: Ticket) -> Rule | None:
    """An emergency is scored for the record; only the answers its environment lists
    escalate it, to the environment's high-risk emergency rule (policy.incidents)."""
    if not escalation_of(ticket):
        return None
    return risk_rule(ticket.environment, "high", "emergency_approval_rule")


def _base_rule_field(ticket: Ticket) -> str:
    emergency = ticket.change_type == "emergency" and ticket.environment.emergency_approval_rule
    return "emergency_approval_rule" if emergency else "approval_rule"


def immediate_rollback_rule(env: Environment) -> Rule:
    """One Tech Lead or DevOps Lead; none where the environment needs no approval (dev)."""
    try:
        needs_approval = Rule.parse(env.approval_rule).required
    except ValueError:
        needs_approval = True
    if not needs_approval:
        return Rule()
    return Rule(any_of=ROLLBACK_APPROVER_ROLES, count=1)


def auto_deploys(env: Environment) -> bool:
    """May the portal apply this environment's tickets with nobody asking? Only where
    ``auto_deploy`` is set AND no approval rule and no change window apply: a row that
    says otherwise (a raw SQL edit, a data migration) is treated as manual, never as
    permission to skip approvals or the window."""
    if not env.auto_deploy or Window.of(env) is not None:
        return False
    try:
        rules = (Rule.parse(env.approval_rule), Rule.parse(env.emergency_approval_rule))
    except ValueError:
        return False
    return not any(rule.required for rule in rules)


# --- auto-deploy applies only what the protected branch holds (issue 17) -------------------
#
# An environment that applies with nobody asking (auto_deploys: dev) applies a ticket's plan
# by itself only when the ticket's commit is reachable from INFRA_BRANCH (main): merged,
# hence reviewed. A plan of any other commit waits for one Lead Developer or Tech Lead,
# never its author, so pushing a branch is not enough to run its code unreviewed. The fact is
# stored on the ticket (``commit_on_branch``) by the worker when the plan finishes and checked
# again when the apply starts.

BRANCH_APPROVAL_RULE: dict[str, Any] = {"any_of": ["lead_developer", "tech_lead"], "count": 1}


def needs_branch_approval(ticket: Ticket) -> bool:
    """Does this ticket wait for a lead because its commit is not on the protected branch?"""
    return getattr(ticket, "commit_on_branch", None) is False and auto_deploys(ticket.environment)


def branch_note(ticket: Ticket, branch: str) -> str:
    """Why the ticket waits ("" when it does not), e.g. "commit abc123 is not on main: dev
    applies it only with a lead's approval (one Lead Developer or Tech Lead, not its author)"."""
    if not needs_branch_approval(ticket):
        return ""
    rule = Rule.parse(BRANCH_APPROVAL_RULE)
    return (
        f"commit {ticket.commit_sha[:10]} is not on {branch}: {ticket.environment.name} "
        f"applies it only with a lead's approval ({rule.describe()}, not its author)"
    )


def rule_for(ticket: Ticket, *, now: dt.datetime) -> Rule:
    return stack_tightened(ticket, _rule_for(ticket, now=now))


def _rule_for(ticket: Ticket, *, now: dt.datetime) -> Rule:
    """The approval rule that applies at ``now``: the emergency rule for emergency tickets,
    one lead for an immediate rollback within its hour, replaced by the environment's rule
    for the ticket's risk level when it has one (see risk_rule); a lead's approval for an
    auto-deploy ticket whose commit is not on the protected branch."""
    env = ticket.environment
    if is_immediate_rollback(ticket, now):
        return immediate_rollback_rule(env)
    if needs_branch_approval(ticket):
        return Rule.parse(BRANCH_APPROVAL_RULE)
    field = _base_rule_field(ticket)
    if field == "emergency_approval_rule":
        override = _emergency_override(ticket)
    else:
        override = risk_rule(env, _risk_level(ticket), field)
    if override is not None:
        return override
    return Rule.parse(getattr(env, field))


def stack_tightened(ticket: Ticket, rule: Rule) -> Rule:
    """``rule`` with the roles the ticket's stack also requires in its environment
    (Stack.environment_rules, docs/stacks.md) added to ``all_of``: a stack may tighten its
    environments' rules, never loosen them."""
    stack = getattr(ticket, "stack", None)
    required = stack.required_roles_in(ticket.environment.name) if stack is not None else []
    extra = tuple(role for role in required if role not in rule.all_of and role in Role.values)
    if not extra:
        return rule
    return Rule(all_of=(*rule.all_of, *extra), any_of=rule.any_of, count=rule.count)
