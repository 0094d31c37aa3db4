"""Reads of the Rego policy results (docs/policies.md): what a plan's policies decided, the
overrides that still count (those of that very plan, by its SHA-256), the ticket's
``policy_status``, and the panel the ticket page shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, prefetch_related_objects

from deployments import policy
from deployments.lib.presentation import role_label
from deployments.models import PolicyCheck, PolicyOverride, PolicyResult, TerraformRun, Ticket
from deployments.policy.plan_policies import PolicyFinding

_ORDER = {"error": 0, "fail": 1, "warn": 2, "pass": 3}
_LEVEL_ORDER = {"hard": 0, "soft": 1, "advisory": 2}


def results_of(run: TerraformRun | None) -> list[PolicyResult]:
    """A plan run's results, failed ones first (errors, then failures by level)."""
    if run is None or not run.pk:
        return []
    if getattr(run, "policy_prefetched", False):
        rows = list(run.policy_results.all())  # prefetched by a list (the home queue)
    else:
        rows = list(PolicyResult.objects.filter(run=run))
    rows.sort(key=lambda r: (_ORDER.get(r.outcome, 9), _LEVEL_ORDER.get(r.level, 9), r.policy))
    return rows


def check_of(run: TerraformRun | None) -> PolicyCheck | None:
    if run is None or not run.pk:
        return None
    if getattr(run, "policy_prefetched", False):  # prefetched by a list (the home queue)
        # (Only then: a PolicyCheck created on this run object caches itself on it too,
        # before its evaluation is recorded through another instance.)
        found = run._state.fields_cache.get("policy_check")
        return found if found is not None and found.evaluated_at is not None else None
    return PolicyCheck.objects.filter(run=run, evaluated_at__isnull=False).first()


def _finding(r: PolicyResult) -> PolicyFinding:
    return PolicyFinding(
        policy=r.policy,
        source=r.source,
        level=r.level,
        outcome=r.outcome,
        messages=tuple(r.messages),
        override_role=r.override_role,
    )


def findings_of(run: TerraformRun | None) -> list[PolicyFinding] | None:
    """The plan's results as the rules read them; None when it was never evaluated (a plan
    from before policies existed)."""
    if check_of(run) is None:
        return None
    return [_finding(r) for r in results_of(run)]


def overrides_of(run: TerraformRun | None) -> list[PolicyOverride]:
    """The overrides that count for this plan: given for it, and for its digest."""
    if run is None or not run.pk or not run.plan_sha256:
        return []
    return list(
        PolicyOverride.objects.filter(plan_run=run, plan_sha256=run.plan_sha256).select_related(
            "overridden_by"
        )
    )


def overridden_of(run: TerraformRun | None) -> set[str]:
    return {o.policy for o in overrides_of(run)}


def policy_state(run: TerraformRun | None) -> tuple[list[PolicyFinding] | None, set[str]]:
    return findings_of(run), overridden_of(run)


def policy_status_of(run: TerraformRun | None) -> str | None:
    findings, overridden = policy_state(run)
    return policy.plan_policies.policy_status(findings, overridden)


def check_plan_policies_of(ticket: Ticket) -> None:
    """Approving and deploying the ticket's current plan: refused while its policies block
    (the one question the ticket page, the API and the services ask)."""
    run = ticket.current_plan
    batch = getattr(ticket, "policy_batch", None)  # a list's tickets (the home queue)
    if batch and not hasattr(ticket, "prefetched_policy_overrides"):
        prefetch_related_objects(batch, *POLICY_PREFETCH)
        for listed in batch:
            if listed.current_plan is not None:
                listed.current_plan.policy_prefetched = True
    prefetched = getattr(ticket, "prefetched_policy_overrides", None)
    if prefetched is not None and run is not None:
        # A list read every ticket's overrides at once (POLICY_PREFETCH): the plan's own.
        findings = findings_of(run)
        overridden = {
            o.policy
            for o in prefetched
            if o.plan_run_id == run.pk and o.plan_sha256 == run.plan_sha256
        }
    else:
        findings, overridden = policy_state(run)
    policy.plan_policies.check_plan_policies(findings, overridden)


# What a list of tickets prefetches so that check_plan_policies_of asks no query per ticket.
POLICY_PREFETCH = (
    "current_plan__policy_check",
    "current_plan__policy_results",
    Prefetch("policy_overrides", to_attr="prefetched_policy_overrides"),
)


@dataclass(frozen=True)
class PolicyRow:
    result: PolicyResult
    override: PolicyOverride | None
    override_role: str
    override_role_label: str
    may_override: bool
    refusal: str = ""


@dataclass(frozen=True)
class PolicyPanel:
    """What the ticket page shows beside the plan."""

    run: TerraformRun | None
    status: str | None
    rows: list[PolicyRow] = field(default_factory=list)
    evaluated_at: Any = None
    needs: list[Any] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        return self.status is not None


def policy_panel(ticket: Ticket, user: Any, roles: frozenset[str]) -> PolicyPanel:
    run = ticket.current_plan
    check = check_of(run)
    if run is None or check is None:
        return PolicyPanel(run=run, status=None)
    results = results_of(run)
    findings = [_finding(r) for r in results]
    overrides = {o.policy: o for o in overrides_of(run)}
    rows = []
    for result, finding in zip(results, findings, strict=True):
        role = policy.plan_policies.override_role_of(finding)
        refusal = ""
        may = False
        if finding.needs_override and result.policy not in overrides:
            try:
                policy.plan_policies.check_may_override(
                    findings,
                    policy_name=result.policy,
                    plan_sha256=run.plan_sha256,
                    current_plan_sha256=run.plan_sha256,
                    user_id=user.pk,
                    author_id=ticket.author_id,
                    user_roles=roles,
                    overridden=set(overrides),
                )
                may = True
            except policy.PolicyError as exc:
                refusal = exc.message
        rows.append(
            PolicyRow(
                result=result,
                override=overrides.get(result.policy),
                override_role=role,
                override_role_label=role_label(role),
                may_override=may,
                refusal=refusal,
            )
        )
    return PolicyPanel(
        run=run,
        status=policy.plan_policies.policy_status(findings, set(overrides)),
        rows=rows,
        evaluated_at=check.evaluated_at,
        needs=policy.plan_policies.override_needs(findings, set(overrides)),
    )
