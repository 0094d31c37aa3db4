"""Rego policies over each plan (docs/policies.md): keeping what they read, evaluating them
after every successful plan (services.lifecycle.after_plan), overrides of soft failures,
dry runs, and saving portal-managed policies. Every write is audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.models import (
    PolicyCheck,
    PolicyOverride,
    PolicyResult,
    PortalPolicy,
    PortalPolicyVersion,
    TerraformRun,
    Ticket,
)
from deployments.policy import data_resources
from deployments.policy.plan_policies import applies_to, outcome_of, stricter
from deployments.selectors.access import user_roles
from deployments.selectors.policies import policy_state
from deployments.services._base import locked_ticket
from deployments.services.audit import audit_record
from deployments.terraform import rego

# A policy folder's files under lib/ are libraries: loaded with every repository policy,
# never evaluated on their own.
LIBRARY_PREFIX = "lib/"


def policy_input_keep(run: TerraformRun, plan: tf.PlanResult) -> None:
    """Keep what the plan's policies read (services.runs.outcome, with the plan itself):
    the masked plan document in private storage, the commit's policy folders (the
    environment's and the stack's own)."""
    check = PolicyCheck(
        run=run,
        repo_dir=plan.policy_dir[:255],
        repo_files=[list(item) for item in plan.policy_files],
        repo_manifest=plan.policy_manifest,
        stack_dir=plan.stack_policy_dir[:255],
        stack_files=[list(item) for item in plan.stack_policy_files],
        stack_manifest=plan.stack_policy_manifest,
        input_error=plan.policy_error,
        folder_error=plan.policy_folder_error,
        stack_folder_error=plan.stack_policy_folder_error,
    )
    if plan.policy_document:
        check.document_sha256 = hashlib.sha256(plan.policy_document).hexdigest()
        check.document.save(f"run-{run.pk}.json", ContentFile(plan.policy_document), save=False)
    check.save()


@dataclass(frozen=True)
class Planned:
    """One policy to evaluate, and how its result is recorded."""

    job: rego.RegoJob
    policy: str
    path: str
    source: str
    version_sha256: str
    level: str
    override_role: str
    folder: str = ""


# The name of the result that stands for a policy folder that cannot be read.
FOLDER_POLICY = "(policy folder)"


@dataclass(frozen=True)
class RepoFolder:
    """One repository folder of policies as read at the plan's commit: the environment's
    (``policy_dir``; its policies are named by their package) or the stack's own
    (``Stack.policy_dir``, ``stack=True``: named ``<folder>/<package>``, so that they stay
    distinct from the environment folder's, in results and overrides alike). A stack's
    folder only adds policies: the environment's are evaluated all the same."""

    dir: str
    files: tuple[tuple[str, str], ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    stack: bool = False

    def name_of(self, package: str) -> str:
        return f"{self.prefix}{package}"

    @property
    def prefix(self) -> str:
        """Before a stack folder's policy names and paths; none for the environment's."""
        return f"{self.dir}/" if self.stack else ""


def check_folders(check: PolicyCheck, environment_policy_dir: str) -> list[RepoFolder]:
    """The policy folders a plan's check kept: the environment's (its folder as it was at
    the plan; a check from before that was recorded names the environment's now), then the
    stack's own when it has one."""
    folders = [
        RepoFolder(
            dir=check.repo_dir or environment_policy_dir,
            files=tuple((str(p), str(t)) for p, t in check.repo_files),
            manifest=check.repo_manifest or {},
            error=check.folder_error,
        )
    ]
    if check.stack_dir:
        folders.append(
            RepoFolder(
                dir=check.stack_dir,
                files=tuple((str(p), str(t)) for p, t in check.stack_files),
                manifest=check.stack_manifest or {},
                error=check.stack_folder_error,
                stack=True,
            )
        )
    return folders


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _portal_policies(environment: str) -> list[PortalPolicy]:
    return [
        p
        for p in PortalPolicy.objects.filter(enabled=True).exclude(version=0)
        if applies_to(p.environments, environment)
    ]


def _repo_planned(
    folder: RepoFolder, environment: str, floors: dict[str, str], prefix: str
) -> list[Planned]:
    entries = (folder.manifest or {}).get("policies") or {}
    modules = [
        rego.PolicyModule(path=f"{prefix}{path}", source=text) for path, text in folder.files
    ]
    libraries = tuple(m for m in modules if m.path[len(prefix) :].startswith(LIBRARY_PREFIX))
    kind = "stack" if folder.stack else "repo"
    planned = []
    for module in modules:
        if module.is_test or module in libraries:
            continue
        package = module.package or module.path
        entry = entries.get(package) or {}
        if not applies_to(entry.get("environments", ["*"]), environment):
            continue
        level = stricter(str(entry.get("level", "hard")), floors.get(package, "advisory"))
        planned.append(
            Planned(
                job=rego.RegoJob(id=f"{kind}:{module.path}", modules=(module, *libraries)),
                policy=folder.name_of(package),
                path=module.path,
                source="repo",
                version_sha256=_sha(module.source),
                level=level,
                override_role=str(entry.get("override_role", "")),
                folder=folder.dir,
            )
        )
    return planned


def folders_planned(
    folders: list[RepoFolder], environment: str
) -> tuple[list[Planned], list[Evaluated]]:
    """The policies that apply to ``environment``: those of ``folders`` (the first the
    environment's, the others a stack's own, named by their folder, their paths too; levels
    from each manifest, never below the portal policy of the same package) and the portal's;
    and a hard error for each folder that cannot be read (a bad manifest, too many files, a
    stack's folder missing at the commit): that fails closed like a policy that cannot be
    evaluated."""
    portal = _portal_policies(environment)
    floors = {p.name: p.level for p in portal}
    planned = [
        item
        for folder in folders
        for item in _repo_planned(folder, environment, floors, folder.prefix)
    ]
    for item in portal:
        module = rego.PolicyModule(path=f"portal:{item.name}", source=item.source)
        planned.append(
            Planned(
                job=rego.RegoJob(id=f"portal:{item.name}", modules=(module,)),
                policy=module.package or item.name,
                path=f"portal:{item.name} v{item.version}",
                source="portal",
                version_sha256=item.sha256,
                level=item.level,
                override_role=item.override_role,
            )
        )
    errors = [
        Evaluated(
            Planned(
                job=rego.RegoJob(id=f"folder:{item.dir}", modules=()),
                policy=item.name_of(FOLDER_POLICY),
                path=item.dir,
                source="repo",
                version_sha256="",
                level="hard",
                override_role="",
                folder=item.dir,
            ),
            "error",
            "hard",
            (item.error,),
            (),
        )
        for item in folders
        if item.error
    ]
    return planned, errors


def policy_input(
    ticket: Ticket, plan: dict[str, Any] | None, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The one document every policy reads as ``input`` (docs/policies.md)."""
    env = ticket.environment
    now = now or timezone.now()
    try:
        zone = zoneinfo.ZoneInfo(env.window_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = now.astimezone(zone)
    try:
        extra = data_resources.parse_extra(env.data_resource_types)
    except ValueError:
        extra = ()
    author = ticket.author
    return {
        "plan": plan or {},
        "ticket": {
            "id": ticket.pk,
            "title": ticket.title,
            "environment": env.name,
            "change_type": ticket.change_type,
            "emergency": ticket.change_type == "emergency",
            "risk_level": (ticket.risk or {}).get("level", ""),
            "risk_score": (ticket.risk or {}).get("score"),
            "risk_answers": ticket.risk_assessment or {},
            "author": {"username": author.get_username(), "roles": sorted(user_roles(author))},
            "commit_sha": ticket.commit_sha,
        },
        "environment": {
            "name": env.name,
            "display_name": env.display_name,
            "timezone": str(zone),
            "auto_deploy": env.auto_deploy,
            "data_resource_types": sorted(
                {*data_resources.DATA_RESOURCE_TYPES, *(e.type for e in extra if e.type)}
            ),
            "data_resource_addresses": sorted(e.address for e in extra if e.address),
            "window": {
                "days": list(env.window_days or []),
                "start": env.window_start.isoformat() if env.window_start else None,
                "end": env.window_end.isoformat() if env.window_end else None,
            },
        },
        "time": {
            "utc": now.astimezone(dt.UTC).isoformat(),
            "local": local.isoformat(),
            "zone": str(zone),
            "date": local.date().isoformat(),
            "weekday": local.strftime("%A").lower(),
            "hour": local.hour,
            "minute": local.minute,
        },
    }


def _document(check: PolicyCheck) -> tuple[dict[str, Any] | None, str]:
    if check.input_error:
        return None, check.input_error
    if not check.document:
        return None, "the plan's JSON was not kept for policies"
    try:
        with check.document.open("rb") as handle:
            return json.loads(handle.read()), ""
    except (OSError, ValueError) as exc:
        return None, f"the plan's JSON cannot be read: {exc}"


@dataclass(frozen=True)
class Evaluated:
    planned: Planned
    outcome: str
    level: str
    messages: tuple[str, ...]
    warnings: tuple[str, ...]


def evaluate_planned(
    planned: list[Planned], input_doc: dict[str, Any] | None, input_error: str = ""
) -> tuple[list[Evaluated], float]:
    """Evaluate ``planned`` over ``input_doc`` in the sandbox; errors fail closed (level
    hard, outcome error, the error as its message)."""
    if not planned:
        return [], 0.0
    if input_doc is None:
        return [
            Evaluated(p, "error", "hard", (f"{p.path}: {input_error}",), ()) for p in planned
        ], 0.0
    result = rego.evaluate(
        rego.RegoSpec(
            jobs=tuple(p.job for p in planned),
            input=input_doc,
            timeout=settings.POLICY_TIMEOUT,
            sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
            work_root=settings.TERRAFORM_HOME / "policy-work",
            memory_bytes=settings.POLICY_MEMORY_MB * 1024**2,
        )
    )
    by_id = result.by_id()
    out = []
    for item in planned:
        found = by_id[item.job.id]
        outcome = outcome_of(deny=found.deny, warn=found.warn, error=found.error)
        if outcome == "error":
            out.append(Evaluated(item, "error", "hard", (f"{item.path}: {found.error}",), ()))
        else:
            out.append(Evaluated(item, outcome, item.level, found.deny, found.warn))
    return out, result.seconds


def policy_evaluate(ticket: Ticket, run: TerraformRun) -> None:
    """After a successful plan (services.lifecycle.after_plan, before the approval route):
    evaluate the repository's and the portal's policies on it, store and audit the results.
    A plan whose policies block still awaits approval; approving and deploying refuse."""
    check = PolicyCheck.objects.filter(run=run).first()
    if check is None:
        check = PolicyCheck.objects.create(
            run=run, input_error="the plan's JSON was not kept for policies"
        )
    planned, folder_errors = folders_planned(
        check_folders(check, ticket.environment.policy_dir), ticket.environment.name
    )
    document, error = _document(check)
    evaluated, seconds = evaluate_planned(
        planned, policy_input(ticket, document) if document is not None else None, error
    )
    evaluated = folder_errors + evaluated
    rows = [
        PolicyResult(
            run=run,
            policy=e.planned.policy[:200],
            path=e.planned.path[:300],
            folder=e.planned.folder[:255],
            source=e.planned.source,
            version_sha256=e.planned.version_sha256,
            level=e.level,
            outcome=e.outcome,
            messages=[m[:2000] for m in e.messages[:100]],
            warnings=[m[:2000] for m in e.warnings[:100]],
            override_role=e.planned.override_role[:32],
        )
        for e in evaluated
    ]
    PolicyResult.objects.bulk_create(rows)
    findings, overridden = policy_state_for_rows(rows)
    status = policy.plan_policies.policy_status(findings, overridden) or ""
    check.status = status
    check.seconds = seconds
    check.evaluated_at = timezone.now()
    check.save(update_fields=["status", "seconds", "evaluated_at"])
    if not rows:
        return  # no policy applies here: nothing decided, nothing to record
    audit_record(
        actor="worker",
        action="policy.evaluate",
        ticket=ticket,
        data={
            "run": run.pk,
            "plan_sha256": run.plan_sha256,
            "status": status,
            "seconds": round(seconds, 3),
            "results": [
                {
                    "policy": r.policy,
                    "source": r.source,
                    "folder": r.folder,
                    "version_sha256": r.version_sha256,
                    "level": r.level,
                    "outcome": r.outcome,
                    "messages": r.messages[:10],
                }
                for r in rows
            ],
        },
    )


def policy_hold(ticket: Ticket) -> bool:
    """An environment that deploys by itself (dev) does not while the plan's policies block:
    the ticket stays approved with the reason, audited (services.approvals.approval_route)."""
    refusal = policy.plan_policies.policy_refusal(*policy_state(ticket.current_plan))
    if not refusal:
        return False
    ticket.status_reason = f"not deployed by itself: {refusal}"
    ticket.save(update_fields=["status_reason", "updated_at"])
    audit_record(
        actor="system",
        action="policy.hold",
        ticket=ticket,
        data={"run": ticket.current_plan_id, "reason": refusal},
    )
    return True


def policy_state_for_rows(
    rows: list[PolicyResult],
) -> tuple[list[policy.plan_policies.PolicyFinding], set[str]]:
    return [
        policy.plan_policies.PolicyFinding(
            policy=r.policy,
            source=r.source,
            level=r.level,
            outcome=r.outcome,
            messages=tuple(r.messages),
            override_role=r.override_role,
        )
        for r in rows
    ], set()


def policy_override(
    *, ticket_id: int, policy_name: str, plan_sha256: str, reason: str, actor: Any
) -> PolicyOverride:
    """Let one soft failure of the current plan through, by the role the policy names,
    with a reason; bound to that plan's SHA-256 (a re-plan voids it)."""
    reason = (reason or "").strip()
    if not reason:
        raise policy.InputError("reason", "give the reason for the override")
    if len(reason) > 2000:
        raise policy.InputError("reason", "at most 2000 characters")
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        run = ticket.current_plan
        findings, overridden = policy_state(run)
        finding = policy.plan_policies.check_may_override(
            findings,
            policy_name=policy_name,
            plan_sha256=plan_sha256,
            current_plan_sha256=run.plan_sha256 if run is not None else "",
            user_id=actor.pk,
            author_id=ticket.author_id,
            user_roles=user_roles(actor),
            overridden=overridden,
        )
        assert run is not None
        override = PolicyOverride.objects.create(
            ticket=ticket,
            plan_run=run,
            plan_sha256=run.plan_sha256,
            policy=finding.policy,
            role=policy.plan_policies.override_role_of(finding),
            reason=reason,
            overridden_by=actor,
        )
        audit_record(
            actor=actor,
            action="policy.override",
            ticket=ticket,
            data={
                "override": override.pk,
                "policy": finding.policy,
                "run": run.pk,
                "plan_sha256": run.plan_sha256,
                "role": override.role,
                "reason": reason,
                "messages": list(finding.messages[:10]),
            },
        )
        return override


def policy_dry_run(
    run: TerraformRun, *, folders: list[RepoFolder] | None = None
) -> tuple[list[Evaluated], float]:
    """Evaluate the policies on a stored plan run again: the folders its commit had (the
    environment's and the stack's own), or ``folders`` instead, for a policy author; and
    the portal's as they are now. Nothing is recorded."""
    check = PolicyCheck.objects.filter(run=run).first()
    if check is None:
        raise policy.PolicyError(f"plan run {run.pk} kept no plan document for policies")
    if folders is None:
        folders = check_folders(check, run.environment.policy_dir)
    planned, folder_errors = folders_planned(folders, run.environment.name)
    document, error = _document(check)
    evaluated, seconds = evaluate_planned(
        planned, policy_input(run.ticket, document) if document is not None else None, error
    )
    return folder_errors + evaluated, seconds


def portal_policy_save(item: PortalPolicy, *, actor: Any) -> PortalPolicyVersion:
    """Save a portal policy as a new version (its SHA-256 recorded), audited."""
    source = item.source or ""
    if not rego.PolicyModule(path=item.name, source=source).package:
        raise policy.InputError("source", "the policy must declare its package")
    with transaction.atomic():
        if item.pk:
            PortalPolicy.objects.select_for_update().filter(pk=item.pk).first()
        item.version = (item.version or 0) + 1
        item.sha256 = _sha(source)
        item.save()
        version = PortalPolicyVersion.objects.create(
            policy=item,
            version=item.version,
            source=source,
            sha256=item.sha256,
            level=item.level,
            environments=list(item.environments or []),
            override_role=item.override_role,
            enabled=item.enabled,
            saved_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            actor=actor,
            action="policy.portal_save",
            data={
                "policy": item.name,
                "version": item.version,
                "sha256": item.sha256,
                "level": item.level,
                "environments": list(item.environments or []),
                "enabled": item.enabled,
            },
        )
        return version
