"""Rollback: the last known good deployment, and what a rollback of a ticket would do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, cast

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from deployments import policy
from deployments.choices import (
    TERMINAL_STATUSES,
    TicketStatus,
)
from deployments.models import (
    Deployment,
    DeploymentOutcome,
    Environment,
    Ticket,
)
from deployments.selectors.access import (
    is_superuser,
    user_roles,
    visible_ticket_ids,
)


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
    env: Environment,
    before: dt.datetime | None = None,
    *,
    exclude_ticket: int | None = None,
    stack_id: int | None = None,
) -> KnownGood | None:
    """The newest succeeded deployment of ``env`` (finished before ``before``) that was
    neither rolled back nor failed its monitoring, and whose ticket did not end rolled back
    or failed afterwards: what a rollback returns to."""
    found = _good_deployments().filter(environment=env)
    if stack_id is not None:  # per stack and environment (docs/stacks.md)
        found = found.filter(stack_id=stack_id)
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
            stack=OuterRef("stack_id"),
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
    return last_known_good(
        ticket.environment, ticket.deployed_at, exclude_ticket=ticket.pk, stack_id=ticket.stack_id
    )


def known_good_for(
    user: Any, good: KnownGood | None, environment: Environment | None = None
) -> KnownGood | None:
    """``good`` as ``user`` may see it: without the ticket that deployed it when that ticket
    is hidden from them (the commit is the environment's state, not the ticket's).
    ``environment``, the one it was deployed to: its viewers see all of its tickets."""
    if good is None or good.ticket_id is None:
        return good
    if environment is not None and policy.can_view(
        environment, user_roles(user), superuser=is_superuser(user)
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
            stack_id=ticket.stack_id,
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
    target = last_known_good(
        ticket.environment, own.finished_at, exclude_ticket=ticket.pk, stack_id=ticket.stack_id
    )
    return RollbackChoice(own, target, open_rollback, newer)
