"""Every read that pages and the API use, scoped to what the caller may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Length, Right, Substr
from django.http import Http404

from . import policy
from .check_selectors import latest_check_statuses
from .choices import (
    ALLOWED_TRANSITIONS,
    REPLANNABLE_STATUSES,
    TERMINAL_STATUSES,
    RunStatus,
    TicketStatus,
)
from .models import (
    Approval,
    AuditEvent,
    Deployment,
    DeploymentOutcome,
    DriftCheck,
    Environment,
    FollowUp,
    RunLogChunk,
    TerraformRun,
    Ticket,
)
from .selectors_windows import conflict_for, freezes_for

AnyUser = AbstractBaseUser | AnonymousUser


def user_roles(user: Any) -> frozenset[str]:
    """The user's group names, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._portal_roles = cached
    return cached


def _is_superuser(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False))


def _all_environments(user: Any) -> list[Environment]:
    """Every environment, read once per request (cached on the user object like its roles):
    visibility checks on one page would otherwise read the table several times."""
    cached = getattr(user, "_portal_environments", None)
    if cached is None:
        cached = list(Environment.objects.all())
        if getattr(user, "is_authenticated", False):
            user._portal_environments = cached
    return cached


def environments_visible_to(user: Any) -> list[Environment]:
    """Environments whose policy the user may read: those they see tickets of or may file in."""
    roles = user_roles(user)
    return [
        env
        for env in _all_environments(user)
        if policy.can_see_environment(env, roles, superuser=_is_superuser(user))
    ]


def environments_viewable_by(user: Any) -> list[Environment]:
    """Environments whose every ticket, deployment and metric the user sees (policy.can_view):
    prod only for operations, the tech and DevOps leads."""
    roles = user_roles(user)
    return [
        env
        for env in Environment.objects.all()
        if policy.can_view(env, roles, superuser=_is_superuser(user))
    ]


def _viewable_environment_ids(user: Any) -> list[int]:
    """Environments whose every ticket the user sees (policy.can_view)."""
    roles = user_roles(user)
    return [
        env.pk
        for env in _all_environments(user)
        if policy.can_view(env, roles, superuser=_is_superuser(user))
    ]


def _visible_q(user: Any, prefix: str = "") -> Q:
    """policy.may_see_ticket as a query: the environment's viewers, or the ticket's author."""
    if not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    return Q(**{f"{prefix}environment_id__in": _viewable_environment_ids(user)}) | Q(
        **{f"{prefix}author_id": user.pk}
    )


def visible_ticket_ids(user: Any, ids: Iterable[int | None]) -> set[int]:
    """Which of these tickets ``user`` may see (policy.may_see_ticket, as a query): every
    list of *other* tickets shown on a ticket (schedule conflicts, the staging ticket, the
    last known good, rollbacks) goes through this, so a hidden ticket's id and title never
    reach its page or API. Answers are kept on the user object for the request."""
    wanted = {int(pk) for pk in ids if pk}
    if not wanted:
        return set()
    if _is_superuser(user):
        return wanted
    known: dict[int, bool] = getattr(user, "_portal_visible_tickets", None) or {}
    missing = wanted - set(known)
    if missing:
        found = set(
            Ticket.objects.filter(_visible_q(user), pk__in=sorted(missing)).values_list(
                "pk", flat=True
            )
        )
        known.update({pk: pk in found for pk in missing})
        if getattr(user, "is_authenticated", False):
            user._portal_visible_tickets = known
    return {pk for pk in wanted if known.get(pk)}


def environments_fileable_by(user: Any) -> list[Environment]:
    roles = user_roles(user)
    result = []
    for env in _all_environments(user):
        try:
            policy.check_may_file(env, roles, superuser=_is_superuser(user))
        except policy.PolicyError:
            continue
        result.append(env)
    return result


def environment_get(name: str) -> Environment | None:
    return Environment.objects.filter(name=name).first()


def tickets_visible_to(user: Any) -> QuerySet[Ticket]:
    """Tickets the user may see (policy.may_see_ticket); any other is 404."""
    return Ticket.objects.filter(_visible_q(user)).select_related(
        "environment", "author", "current_plan", "current_plan__requested_by"
    )


def ticket_list(
    user: Any,
    *,
    environment: str = "",
    status: str = "",
    author: str = "",
    commit: str = "",
) -> QuerySet[Ticket]:
    """Tickets the user may see, filtered; ``commit`` is a full SHA or a prefix (lower case)."""
    tickets = tickets_visible_to(user)
    if environment:
        tickets = tickets.filter(environment__name=environment)
    if status:
        tickets = tickets.filter(status=status)
    if author:
        tickets = tickets.filter(author__username=author)
    if commit:
        tickets = tickets.filter(commit_sha__startswith=commit)
    return tickets


# Offsets beyond this read ids first (rows_at).
DEEP_OFFSET = 1000


def rows_at(queryset: QuerySet[Any], offset: int, size: int) -> list[Any]:
    """``queryset[offset:offset + size]``; a deep offset steps over the skipped rows reading
    ids only (an index scan: the list indexes cover the visibility filter), then loads the
    page's rows with their joins by id."""
    if offset <= DEEP_OFFSET:
        return list(queryset[offset : offset + size])
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + size])
    rows = {row.pk: row for row in queryset.filter(pk__in=ids)}
    return [rows[pk] for pk in ids if pk in rows]


def ticket_get(user: Any, pk: int | str) -> Ticket:
    """A ticket the user may see, or 404 (never 403: existence is not disclosed)."""
    try:
        ticket = (
            tickets_visible_to(user)
            .prefetch_related(
                # Each run's log is up to RUN_LOG_MAX_BYTES: only its last page is loaded.
                Prefetch(
                    "runs",
                    queryset=runs_with_log_tails(
                        TerraformRun.objects.select_related("requested_by")
                    ),
                ),
                Prefetch(
                    "approvals", queryset=Approval.objects.select_related("approver", "plan_run")
                ),
            )
            .get(pk=pk)
        )
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise Http404("No such ticket") from None
    _check_visible(user, ticket)
    return ticket


def _check_visible(user: Any, ticket: Ticket) -> None:
    """The rule itself, after the query: a query that drifted from it still shows nothing."""
    if not policy.may_see_ticket(ticket, user.pk, user_roles(user), superuser=_is_superuser(user)):
        raise Http404("No such ticket")


def runs_visible_to(user: Any) -> QuerySet[TerraformRun]:
    """Runs (and so their logs) of the tickets the user may see."""
    return TerraformRun.objects.filter(_visible_q(user, "ticket__")).select_related(
        "ticket", "ticket__environment", "environment"
    )


def run_get(user: Any, pk: int | str) -> TerraformRun:
    """A run of a ticket the user may see, or 404 (the API, the page and the live log)."""
    try:
        run = runs_visible_to(user).get(pk=pk)
    except (TerraformRun.DoesNotExist, ValueError, TypeError):
        raise Http404("No such run") from None
    try:
        _check_visible(user, run.ticket)
    except Http404:
        raise Http404("No such run") from None
    return run


# How much of a run's log one answer carries: the API's and the page's `log` is its tail,
# earlier pages are asked for with ?before= (GET /api/v1/runs/{id}/log/).
LOG_PAGE_CHARS = 64 * 1024


def run_log_text(run: TerraformRun) -> str:
    """The whole stored log (bounded by RUN_LOG_MAX_BYTES): final once the run is
    finished, assembled from chunks while it runs."""
    if run.log or not run.is_active:
        return run.log
    return "".join(RunLogChunk.objects.filter(run=run).values_list("text", flat=True))


@dataclass(frozen=True)
class LogPage:
    """Characters ``start``..``end`` of a run's log of ``size`` characters."""

    text: str
    start: int
    end: int
    size: int


def run_log_page(
    run: TerraformRun, *, before: int | None = None, limit: int = LOG_PAGE_CHARS
) -> LogPage:
    """The ``limit`` characters of the log ending at ``before`` (default: its end): the
    tail first, then earlier pages. A finished run's log is cut in the database."""
    limit = max(1, min(limit, LOG_PAGE_CHARS))
    tail = getattr(run, "log_tail", None)  # runs_with_log_tails: the last page is there
    if tail is not None and not run.is_active and before is None and limit == LOG_PAGE_CHARS:
        size = int(getattr(run, "log_size", 0) or 0)
        return LogPage(tail, size - len(tail), size, size)
    if run.is_active:
        # Until the run finishes its log is in chunks (``log`` is folded in at the end).
        text = "".join(
            RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
        )
        size = len(text)
        end = size if before is None else max(0, min(before, size))
        start = max(0, end - limit)
        return LogPage(text[start:end], start, end, size)
    size = (
        TerraformRun.objects.filter(pk=run.pk)
        .annotate(n=Length("log"))
        .values_list("n", flat=True)
        .first()
        or 0
    )
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - limit)
    piece = (
        TerraformRun.objects.filter(pk=run.pk)
        .annotate(piece=Substr("log", start + 1, end - start))
        .values_list("piece", flat=True)
        .first()
        if end > start
        else ""
    )
    return LogPage(piece or "", start, end, size)


def runs_with_log_tails(runs: QuerySet[TerraformRun]) -> QuerySet[TerraformRun]:
    """Runs without their whole logs: ``log_tail`` (the last page) and ``log_size``."""
    return runs.defer("log").annotate(log_tail=Right("log", LOG_PAGE_CHARS), log_size=Length("log"))


def run_log_since(run: TerraformRun, offset: int) -> tuple[str, int]:
    """Log text from character ``offset`` on, and the offset to ask for next (live pages).

    While a run is active its log lives in chunks that each know their starting
    offset; once it finishes they are folded into ``log``, with the same offsets. A reader
    further behind than one page gets the last page, after a line saying what it skipped.
    """
    offset = max(offset, 0)
    if run.is_active:
        text = "".join(
            RunLogChunk.objects.filter(run=run, start__gte=offset)
            .order_by("seq")
            .values_list("text", flat=True)
        )
        end = offset + len(text)
    else:
        page = run_log_page(run)
        end = page.size
        if offset >= page.start:
            return page.text[offset - page.start :], end
        skipped = page.start - offset
        return f"[… {skipped} characters skipped: see the run's full log …]\n{page.text}", end
    if len(text) > LOG_PAGE_CHARS:
        skipped = len(text) - LOG_PAGE_CHARS
        text = f"[… {skipped} characters skipped …]\n" + text[-LOG_PAGE_CHARS:]
    return text, end


def audit_for_ticket(ticket: Ticket) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(ticket=ticket).select_related("actor").order_by("id")


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page and API filter on (parsed and checked by the caller)."""

    ticket: int | None = None
    actor: str = ""
    # Exact, or a prefix when it ends with "*" or "." ("ticket.*", "approval.").
    action: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def may_read_audit(user: Any) -> bool:
    return policy.can_read_audit(user_roles(user), staff=_is_staff(user))


def _is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False) or _is_superuser(user))


def audit_events(user: Any, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events the user may read, newest first: raises PolicyError (actor) for those
    who may not read the trail; events of tickets they may not see are left out (a
    lead developer sees no prod ticket's events), events of no ticket are shown."""
    policy.check_may_read_audit(user_roles(user), staff=_is_staff(user))
    events = AuditEvent.objects.all()
    if not _is_superuser(user):
        events = events.filter(Q(ticket__isnull=True) | _visible_q(user, "ticket__"))
    if filters.ticket is not None:
        events = events.filter(ticket_id=filters.ticket)
    if filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.action.endswith(("*", ".")):
        events = events.filter(action__startswith=filters.action.rstrip("*"))
    elif filters.action:
        events = events.filter(action=filters.action)
    if filters.since is not None:
        events = events.filter(at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(at__lt=filters.until)
    return events.order_by("-id")


def standing_votes(ticket: Ticket) -> list[policy.Vote]:
    """The ticket's approvals that still count (not voided by a newer plan)."""
    return [
        policy.Vote(
            approver_id=a.approver_id,
            approver_name=a.approver.get_username(),
            roles=frozenset(a.held_roles),
            role=a.role,
        )
        for a in ticket_approvals(ticket)
        if a.voided_at is None
    ]


def ticket_approvals(ticket: Ticket) -> list[Approval]:
    """All the ticket's approvals (voided too) with approver and plan run, oldest first:
    those ticket_get loaded with the ticket, or one query. Pages and the API detail read
    them several times per request (votes, summary, the list itself)."""
    if "approvals" in getattr(ticket, "_prefetched_objects_cache", {}):
        return list(ticket.approvals.all())
    return list(
        Approval.objects.filter(ticket=ticket)
        .select_related("approver", "plan_run")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True)
class Permission:
    """Whether the user may take an action now, and if not, the sentence that says why."""

    allowed: bool
    reason: str = ""
    relevant: bool = True  # worth showing at all in this ticket state


def _check(call: Any) -> Permission:
    try:
        call()
    except policy.PolicyError as exc:
        return Permission(False, exc.message)
    return Permission(True)


def check_may_approve_now(
    ticket: Ticket,
    user: Any,
    *,
    roles: frozenset[str],
    votes: list[policy.Vote],
    has_plan: bool,
    now: dt.datetime,
) -> str:
    """Every rule an approval meets, in order: the approver's own rules, then the
    promotion gate and the required CI checks. Returns the role the approver counts for;
    approval_grant and the ticket page both ask this."""
    from .evidence_selectors import check_promotion  # it reads through this module

    role = policy.check_may_approve(
        ticket,
        user_id=user.pk,
        username=user.get_username(),
        user_roles=roles,
        votes=votes,
        has_current_plan=has_plan,
        now=now,
    )
    check_promotion(ticket)
    policy.check_required_checks(ticket, latest_check_statuses(ticket))
    return role


def ticket_actions(ticket: Ticket, user: Any, now: dt.datetime) -> dict[str, Permission]:
    """What the ticket page offers this user: each action with its refusal, if any."""
    roles = user_roles(user)
    superuser = _is_superuser(user)
    votes = standing_votes(ticket)
    plan = ticket.current_plan
    has_plan = bool(plan and plan.status == RunStatus.SUCCEEDED and plan.plan_sha256)
    if "runs" in getattr(ticket, "_prefetched_objects_cache", {}):
        # ticket_get loaded the runs already: no second look.
        busy = any(run.status in (RunStatus.QUEUED, RunStatus.RUNNING) for run in ticket.runs.all())
    else:
        busy = ticket.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()
    status = TicketStatus(ticket.status)
    rule = policy.rule_for(ticket, now=now)
    state = policy.quorum(rule, votes)
    pending = state.describe_missing()
    reopened = policy.needs_more_approval(ticket, votes, now=now)
    actions = {
        "approve": _check(
            lambda: check_may_approve_now(
                ticket, user, roles=roles, votes=votes, has_plan=has_plan, now=now
            )
        ),
        "reject": _check(
            lambda: policy.check_may_reject(ticket, user_id=user.pk, user_roles=roles, now=now)
        ),
        "deploy": _check(
            lambda: policy.check_may_deploy(
                ticket,
                user_roles=roles,
                now=now,
                pending=pending,
                quorum_met=not reopened,
                freezes=freezes_for(ticket.environment, now),
            )
        ),
        "plan": _check(
            lambda: policy.check_may_plan(
                ticket, user.pk, roles, votes=votes, now=now, superuser=superuser
            )
        ),
        "cancel": _check(
            lambda: policy.check_may_cancel(ticket, user.pk, roles, superuser=superuser)
        ),
    }
    # Shown on every deployed ticket (the monitoring banner links to it); the reason says
    # who may open one when this person may not.
    rollback_relevant = status in policy.ROLLBACK_FROM_STATUSES and ticket.change_type != "rollback"
    if rollback_relevant:
        choice = rollback_choice(ticket)
        actions["rollback"] = _check(
            lambda: policy.check_may_roll_back(
                ticket, choice.facts, user_roles=roles, superuser=superuser
            )
        )
    else:
        actions["rollback"] = Permission(False)
    relevance = {
        "approve": (status == TicketStatus.AWAITING_APPROVAL or reopened) and rule.required,
        "reject": status in (TicketStatus.AWAITING_APPROVAL, TicketStatus.APPROVED)
        and rule.required,
        "deploy": status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED),
        "plan": status in REPLANNABLE_STATUSES and status != TicketStatus.DRAFT and not busy,
        "cancel": TicketStatus.CANCELLED in ALLOWED_TRANSITIONS[status],
        "rollback": rollback_relevant,
    }
    return {
        name: Permission(p.allowed and relevance[name], p.reason, relevance[name])
        for name, p in actions.items()
    }


def available_actions(ticket: Ticket, user: Any, now: dt.datetime) -> list[str]:
    """The actions this user may take on the ticket now (the API's ``available_actions``;
    the page shows the same ones from ticket_actions)."""
    return [name for name, p in ticket_actions(ticket, user, now).items() if p.allowed]


# --- schedule conflicts -----------------------------------------------------------


@dataclass(frozen=True)
class ConflictView:
    """A schedule conflict as one viewer sees it: the tickets sharing the window that they
    may see, in run order, and how many others (ids and titles withheld) run with them."""

    environment: str
    opens: dt.datetime | None
    closes: dt.datetime | None
    position: int  # this ticket's place in the run order (1 = first)
    size: int  # every ticket in the window, seen or not
    tickets: tuple[Ticket, ...]
    hidden: int


def conflict_seen_by(user: Any, ticket: Ticket) -> ConflictView | None:
    """The conflict this scheduled ticket is part of, through the viewer's visibility."""
    conflict = conflict_for(ticket)
    if conflict is None:
        return None
    shown = visible_ticket_ids(user, [t.pk for t in conflict.tickets]) | {ticket.pk}
    tickets = tuple(t for t in conflict.tickets if t.pk in shown)
    return ConflictView(
        environment=conflict.environment,
        opens=conflict.opens,
        closes=conflict.closes,
        position=conflict.position(ticket),
        size=len(conflict.tickets),
        tickets=tickets,
        hidden=len(conflict.tickets) - len(tickets),
    )


# --- follow-ups --------------------------------------------------------------------


def follow_ups_of(ticket: Ticket) -> list[FollowUp]:
    """A ticket's follow-ups, oldest deadline first."""
    return list(FollowUp.objects.filter(ticket=ticket).select_related("completed_by"))


def tickets_with_overdue_follow_ups(ticket_ids: list[int], now: dt.datetime) -> set[int]:
    """Which of these tickets owe a follow-up past its deadline."""
    return set(
        FollowUp.objects.filter(
            ticket_id__in=ticket_ids, done_at__isnull=True, due_at__lte=now
        ).values_list("ticket_id", flat=True)
    )


# --- rollback: the last known good deployment ------------------------------------


@dataclass(frozen=True)
class KnownGood:
    # None when shown to someone who may not see the ticket that deployed it (known_good_for).
    ticket_id: int | None
    commit_sha: str
    deployed_at: dt.datetime
    deployment_id: int = 0
    var_file: str = ""


def _good_deployments() -> QuerySet[Deployment]:
    """Deployments a rollback could return to: succeeded, neither rolled back nor failed
    their monitoring, and whose ticket did not end rolled back or failed afterwards."""
    return Deployment.objects.filter(
        outcome=DeploymentOutcome.SUCCEEDED,
        rolled_back_at__isnull=True,
        monitoring_failed_at__isnull=True,
    ).exclude(ticket__status__in=[TicketStatus.ROLLED_BACK, TicketStatus.APPLY_FAILED])


def _known_good(deployment: Deployment | None) -> KnownGood | None:
    if deployment is None:
        return None
    return KnownGood(
        ticket_id=deployment.ticket_id,
        commit_sha=deployment.commit_sha,
        deployed_at=deployment.finished_at,
        deployment_id=deployment.pk,
        var_file=deployment.var_file,
    )


_KNOWN_GOOD_FIELDS = ("ticket_id", "commit_sha", "finished_at", "var_file")


def last_known_good(
    env: Environment, before: dt.datetime | None = None, *, exclude_ticket: int | None = None
) -> KnownGood | None:
    """The newest succeeded deployment of ``env`` (finished before ``before``) that was
    neither rolled back nor failed its monitoring, and whose ticket did not end rolled back
    or failed afterwards: what a rollback returns to."""
    found = _good_deployments().filter(environment=env)
    if before is not None:
        found = found.filter(finished_at__lt=before)
    if exclude_ticket is not None:
        found = found.exclude(ticket_id=exclude_ticket)
    return _known_good(found.order_by("-finished_at", "-pk").only(*_KNOWN_GOOD_FIELDS).first())


# Later than any deployment: "before" for tickets not deployed yet.
_END_OF_TIME = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
_NOT_ATTACHED = object()


def attach_last_known_good(tickets: list[Ticket]) -> None:
    """ticket_last_known_good for a whole page of tickets in two queries, whatever its
    length (lists would otherwise make one query per ticket)."""
    if not tickets:
        return
    newest = (
        _good_deployments()
        .filter(
            environment=OuterRef("environment_id"),
            finished_at__lt=Coalesce(OuterRef("deployed_at"), Value(_END_OF_TIME)),
        )
        .exclude(ticket_id=OuterRef("pk"))
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )
    chosen: dict[int, int | None] = dict(
        Ticket.objects.filter(pk__in=[t.pk for t in tickets])
        .annotate(good=Subquery(newest))
        .values_list("pk", "good")
    )
    for ticket in tickets:  # a rollback ticket's is the deployment it returns to
        if ticket.rollback_target_id:
            chosen[ticket.pk] = ticket.rollback_target_id
    found = {
        d.pk: d
        for d in Deployment.objects.filter(pk__in={v for v in chosen.values() if v}).only(
            *_KNOWN_GOOD_FIELDS
        )
    }
    for ticket in tickets:
        good = chosen.get(ticket.pk)
        ticket._known_good = _known_good(found.get(good) if good else None)  # type: ignore[attr-defined]


def ticket_last_known_good(ticket: Ticket) -> KnownGood | None:
    """What this ticket's rollback would return to: the environment's last good deployment
    before the ticket's own (or now, when it is not deployed). A rollback ticket's is the
    deployment it returns to. Lists attach it in bulk (attach_last_known_good)."""
    attached = ticket.__dict__.get("_known_good", _NOT_ATTACHED)
    if attached is not _NOT_ATTACHED:
        return cast(KnownGood | None, attached)
    if ticket.rollback_target_id:
        return _known_good(
            Deployment.objects.only(*_KNOWN_GOOD_FIELDS).get(pk=ticket.rollback_target_id)
        )
    return last_known_good(ticket.environment, ticket.deployed_at, exclude_ticket=ticket.pk)


def known_good_for(
    user: Any, good: KnownGood | None, environment: Environment | None = None
) -> KnownGood | None:
    """``good`` as ``user`` may see it: without the ticket that deployed it when that ticket
    is hidden from them (the commit is the environment's state, not the ticket's).
    ``environment``, the one it was deployed to: its viewers see all of its tickets."""
    if good is None or good.ticket_id is None:
        return good
    if environment is not None and policy.can_view(
        environment, user_roles(user), superuser=_is_superuser(user)
    ):
        return good
    if good.ticket_id in visible_ticket_ids(user, [good.ticket_id]):
        return good
    return replace(good, ticket_id=None)


@dataclass(frozen=True)
class RollbackChoice:
    """What a rollback of a ticket would do: the ticket's own (latest) deployment, the last
    known good deployment before it, and what stands in the way."""

    own: Deployment | None
    target: KnownGood | None
    open_rollback_id: int | None
    newer_ticket_id: int | None

    @property
    def facts(self) -> policy.RollbackFacts:
        return policy.RollbackFacts(
            deployed=self.own is not None,
            target_ticket_id=self.target.ticket_id if self.target else None,
            open_rollback_id=self.open_rollback_id,
            newer_ticket_id=self.newer_ticket_id,
        )


def rollback_choice(ticket: Ticket) -> RollbackChoice:
    """The rollback of ``ticket`` as the page, the API and the service see it (4 queries,
    once per ticket object: the actions and the rollback section of one page share it)."""
    cached = ticket.__dict__.get("_rollback_choice")
    if cached is None:
        cached = ticket.__dict__["_rollback_choice"] = _rollback_choice(ticket)
    return cast(RollbackChoice, cached)


def _rollback_choice(ticket: Ticket) -> RollbackChoice:
    own = (
        Deployment.objects.filter(ticket=ticket)
        .order_by("-finished_at", "-pk")
        .only("pk", "finished_at", "outcome", "commit_sha", "environment_id")
        .first()
    )
    open_rollback = (
        Ticket.objects.filter(rollback_of=ticket)
        .exclude(status__in=TERMINAL_STATUSES)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if own is None:
        return RollbackChoice(None, None, open_rollback, None)
    newer = (
        Deployment.objects.filter(
            environment_id=ticket.environment_id,
            outcome=DeploymentOutcome.SUCCEEDED,
            rolled_back_at__isnull=True,
            finished_at__gt=own.finished_at,
        )
        .exclude(ticket=ticket)
        .exclude(ticket__status=TicketStatus.ROLLED_BACK)
        # A rollback that returned the environment to this very ticket's deployment.
        .exclude(ticket__rollback_target__ticket=ticket)
        .order_by("-finished_at")
        .values_list("ticket_id", flat=True)
        .first()
    )
    target = last_known_good(ticket.environment, own.finished_at, exclude_ticket=ticket.pk)
    return RollbackChoice(own, target, open_rollback, newer)


def drift_checks_of(env: Environment, limit: int = 10) -> list[DriftCheck]:
    """The environment's latest drift reports, newest first (one query)."""
    return list(
        DriftCheck.objects.filter(environment=env)
        .select_related("environment")
        .order_by("-started_at", "-pk")[:limit]
    )


def latest_drift_by_environment(envs: list[Environment]) -> dict[int, DriftCheck]:
    """Each environment's newest finished drift report (one query, whatever the count)."""
    newest = (
        DriftCheck.objects.filter(environment=OuterRef("environment"), finished_at__isnull=False)
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    rows = DriftCheck.objects.filter(
        environment__in=envs, finished_at__isnull=False, pk=Subquery(newest)
    ).select_related("deployment")
    return {check.environment_id: check for check in rows}


def notifications_visible_to(
    user: Any, *, status: str = "", event: str = "", channel: str = ""
) -> QuerySet[Any]:
    """The notification log for Operations and leads: rows about tickets they may see (and
    ticketless ones), newest first, with recipient and ticket in the same query."""
    from notifications.models import Notification

    rows = Notification.objects.filter(
        Q(ticket__isnull=True) | Q(ticket__in=tickets_visible_to(user).values("pk"))
    ).select_related("recipient", "ticket")
    if status:
        rows = rows.filter(status=status)
    if event:
        rows = rows.filter(event=event)
    if channel:
        rows = rows.filter(channel=channel)
    return rows.order_by("-created_at", "-id")
