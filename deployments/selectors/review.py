"""The ticket page as a review surface: the plan as structured diffs, the commit with a
compare link, and who may still approve (TicketView's ``plan_review``, ``commit_review``
and ``approvers_needed``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from deployments import policy
from deployments.lib.presentation import role_label
from deployments.models import Deployment, TerraformRun, Ticket
from deployments.selectors.access import visible_q
from deployments.terraform.summary import summary_line

# The order the page lists changes in: what cannot be undone first.
ACTIONS = ("destroy", "replace", "forget", "update", "create", "import", "move")
DESTRUCTIVE = frozenset({"destroy", "replace"})
ACTION_LABELS = {
    "destroy": "Destroy",
    "replace": "Replace",
    "forget": "Forget",
    "update": "Update",
    "create": "Create",
    "import": "Import",
    "move": "Move",
}


def _review_action(resource: dict[str, Any]) -> str:
    """One of ACTIONS for a summary resource (deployments.terraform.summary)."""
    action = str(resource.get("action", ""))
    if action == "delete":
        return "destroy"
    if action in ("replace", "update", "create", "forget"):
        return action
    if "forget" in action:  # create+forget: replaced, the old object kept unmanaged
        return "replace"
    if resource.get("importing"):
        return "import"
    if resource.get("previous_address"):
        return "move"
    return "update"


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    module: str
    action: str
    importing: bool
    previous_address: str
    rows: tuple[dict[str, Any], ...]
    more: int
    omitted: bool

    @property
    def destructive(self) -> bool:
        return self.action in DESTRUCTIVE

    @property
    def action_label(self) -> str:
        return ACTION_LABELS[self.action]

    @property
    def forced_by(self) -> list[str]:
        """The attributes whose change forces a replacement."""
        return [r["path"] for r in self.rows if r.get("forces_replacement")]


@dataclass(frozen=True)
class ChangeGroup:
    module: str  # "" for the root module
    action: str
    changes: tuple[ResourceChange, ...]

    @property
    def module_label(self) -> str:
        return self.module or "root module"

    @property
    def action_label(self) -> str:
        return ACTION_LABELS[self.action]

    @property
    def destructive(self) -> bool:
        return self.action in DESTRUCTIVE


@dataclass(frozen=True)
class PlanReview:
    groups: tuple[ChangeGroup, ...]
    counts: tuple[tuple[str, str, int], ...]  # (action, label, count), in ACTIONS order
    destructive: tuple[ResourceChange, ...]
    has_diffs: bool  # plans made before diffs were kept show addresses only
    truncated: int = 0
    outputs: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(count for _, _, count in self.counts)


def plan_review(run: TerraformRun | None) -> PlanReview | None:
    """The plan's resource changes grouped by action (destructive first) and module, each
    with its attributes before → after as the worker kept them, masked."""
    if run is None or not run.summary:
        return None
    summary = run.summary
    resources = list(summary.get("resources") or [])
    diffs = list(summary.get("diffs") or [])
    if len(diffs) != len(resources):  # one per resource, in order (terraform.diff)
        diffs = []
    changes = []
    for i, r in enumerate(resources):
        diff = diffs[i] if diffs and isinstance(diffs[i], dict) else {}
        changes.append(
            ResourceChange(
                address=str(r.get("address", "")),
                type=str(r.get("type", "")),
                module=str(r.get("module", "")),
                action=_review_action(r),
                importing=bool(r.get("importing")),
                previous_address=str(r.get("previous_address") or ""),
                rows=tuple(diff.get("rows") or ()),
                more=int(diff.get("more") or 0),
                omitted=bool(diff.get("omitted")),
            )
        )
    order = {a: i for i, a in enumerate(ACTIONS)}
    changes.sort(key=lambda c: (order[c.action], c.module, c.address))
    groups: list[ChangeGroup] = []
    for change in changes:
        if groups and (groups[-1].action, groups[-1].module) == (change.action, change.module):
            last = groups[-1]
            groups[-1] = ChangeGroup(last.module, last.action, (*last.changes, change))
        else:
            groups.append(ChangeGroup(change.module, change.action, (change,)))
    counts = tuple(
        (a, ACTION_LABELS[a], n) for a in ACTIONS if (n := sum(1 for c in changes if c.action == a))
    )
    return PlanReview(
        groups=tuple(groups),
        counts=counts,
        destructive=tuple(c for c in changes if c.destructive),
        has_diffs=bool(diffs) or ("diffs" in summary and not resources),
        truncated=int((summary.get("truncated") or {}).get("resources") or 0),
        outputs=tuple(summary.get("outputs_changed") or ()),
    )


# --- the commit -----------------------------------------------------------------------


def repository_web_url(ticket: Ticket) -> str:
    """The web address of the repository a ticket's stack lives in (links to commits and
    comparisons): the stack's own web URL, else INFRA_REPO_WEB_URL, else GitHub's page of
    GITHUB_REPOSITORY, else "" (no links). A stack in a repository of its own without a
    web URL gets no links: the portal-wide addresses are INFRA_REPO's, not its."""
    stack = ticket.stack
    if stack.web_url:
        return str(stack.web_url).rstrip("/")
    if stack.repository and stack.repository != settings.INFRA_REPO:
        return ""
    url = str(getattr(settings, "INFRA_REPO_WEB_URL", "") or "").rstrip("/")
    if url:
        return url
    repository = str(getattr(settings, "GITHUB_REPOSITORY", "") or "")
    return f"https://github.com/{repository}" if repository else ""


@dataclass(frozen=True)
class CommitReview:
    sha: str
    message: str
    subject: str
    body: str
    author: str
    authored_at: dt.datetime | None
    commit_url: str
    last_deployed_sha: str
    last_deployed_ticket_id: int | None
    compare_url: str

    @property
    def same_as_deployed(self) -> bool:
        return self.last_deployed_sha == self.sha


def _last_deployed(ticket: Ticket, user: Any) -> dict[str, Any] | None:
    """The stack's newest succeeded deployment in the environment made by another ticket:
    what this commit would replace; ``shown`` says whether ``user`` may see that ticket (one
    query either way)."""
    visible = Ticket.objects.filter(visible_q(user)).values("pk")
    return (
        Deployment.objects.filter(
            environment_id=ticket.environment_id, stack_id=ticket.stack_id, outcome="succeeded"
        )
        .exclude(ticket_id=ticket.pk)
        .annotate(shown=Exists(visible.filter(pk=OuterRef("ticket_id"))))
        .order_by("-finished_at", "-id")
        .values("commit_sha", "ticket_id", "shown")
        .first()
    )


def commit_review(ticket: Ticket, plan: TerraformRun | None, user: Any) -> CommitReview:
    """The ticket's commit as ``user`` reads it; the last deployment's ticket is named
    only when they may see it."""
    facts = ((plan.summary or {}) if plan is not None else {}).get("commit") or {}
    message = str(facts.get("message", ""))
    subject, _, body = message.partition("\n")
    try:
        authored = dt.datetime.fromisoformat(facts["authored_at"]) if facts else None
    except (KeyError, ValueError):
        authored = None
    base = repository_web_url(ticket)
    last = _last_deployed(ticket, user)
    last_sha = str(last["commit_sha"]) if last is not None else ""
    compare = f"{base}/compare/{last_sha}...{ticket.commit_sha}" if base and last_sha else ""
    return CommitReview(
        sha=ticket.commit_sha,
        message=message,
        subject=subject.strip(),
        body=body.strip(),
        author=str(facts.get("author", "")),
        authored_at=authored,
        commit_url=f"{base}/commit/{ticket.commit_sha}" if base else "",
        last_deployed_sha=last_sha,
        last_deployed_ticket_id=last["ticket_id"] if last is not None and last["shown"] else None,
        compare_url=compare if last_sha != ticket.commit_sha else "",
    )


# --- who may still approve ---------------------------------------------------------------


@dataclass(frozen=True)
class Approver:
    username: str
    roles: str  # "Tech Lead, DevOps Lead"


def approvers_needed(
    ticket: Ticket, votes: list[policy.Vote], now: dt.datetime
) -> tuple[Approver, ...]:
    """The people who could give a missing approval: active holders of a role of the rule
    that is still needed, neither the author nor someone whose vote stands."""
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, votes)
    if state.met or not rule.required:
        return ()
    voted = {v.approver_id for v in votes}
    placement = policy.assign(rule, policy.counting(rule, votes)) or []
    open_roles: set[str] = set()
    for i, slot in enumerate(rule.slots):
        if i not in placement:
            open_roles |= slot
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=sorted(open_roles))
        .exclude(pk=ticket.author_id)
        .exclude(pk__in=voted)
        .prefetch_related("groups")
        .distinct()
        .order_by("username")[:20]
    )
    return tuple(
        Approver(
            username=u.get_username(),
            roles=", ".join(role_label(g.name) for g in u.groups.all() if g.name in open_roles),
        )
        for u in users
    )


def run_summary_line(run: TerraformRun) -> str:
    """A plan run's counts as Terraform words them ("" for a run without a summary)."""
    return summary_line(run.summary) if run.summary and "add" in run.summary else ""
