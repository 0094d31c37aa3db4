"""Who sees what, as queries: the caller's roles, the environments and tickets (and so runs
and logs) they may see (policy.may_see_ticket written as a query); anything else is 404."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from deployments import policy
from deployments.models import (
    Approval,
    Environment,
    TerraformRun,
    Ticket,
)
from deployments.selectors.runs import runs_with_log_tails

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


def is_superuser(user: Any) -> bool:
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
        if policy.can_see_environment(env, roles, superuser=is_superuser(user))
    ]


def environments_viewable_by(user: Any) -> list[Environment]:
    """Environments whose every ticket, deployment and metric the user sees (policy.can_view):
    prod only for operations, the tech and DevOps leads."""
    roles = user_roles(user)
    return [
        env
        for env in Environment.objects.all()
        if policy.can_view(env, roles, superuser=is_superuser(user))
    ]


def _viewable_environment_ids(user: Any) -> list[int]:
    """Environments whose every ticket the user sees (policy.can_view)."""
    roles = user_roles(user)
    return [
        env.pk
        for env in _all_environments(user)
        if policy.can_view(env, roles, superuser=is_superuser(user))
    ]


def visible_q(user: Any, prefix: str = "") -> Q:
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
    if is_superuser(user):
        return wanted
    known: dict[int, bool] = getattr(user, "_portal_visible_tickets", None) or {}
    missing = wanted - set(known)
    if missing:
        found = set(
            Ticket.objects.filter(visible_q(user), pk__in=sorted(missing)).values_list(
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
            policy.check_may_file(env, roles, superuser=is_superuser(user))
        except policy.PolicyError:
            continue
        result.append(env)
    return result


def environment_get(name: str) -> Environment | None:
    return Environment.objects.filter(name=name).first()


def tickets_visible_to(user: Any) -> QuerySet[Ticket]:
    """Tickets the user may see (policy.may_see_ticket); any other is 404."""
    return Ticket.objects.filter(visible_q(user)).select_related(
        "environment", "stack", "author", "current_plan", "current_plan__requested_by"
    )


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
                    "approvals",
                    # The approvers' groups: votes count the roles they hold now (votes_for).
                    queryset=Approval.objects.select_related(
                        "approver", "plan_run"
                    ).prefetch_related("approver__groups"),
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
    if not policy.may_see_ticket(ticket, user.pk, user_roles(user), superuser=is_superuser(user)):
        raise Http404("No such ticket")


def runs_visible_to(user: Any) -> QuerySet[TerraformRun]:
    """Runs (and so their logs) of the tickets the user may see."""
    return TerraformRun.objects.filter(visible_q(user, "ticket__")).select_related(
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
