"""Reads of testing evidence and of the staging ticket a prod ticket is promoted from."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Case, Count, F, IntegerField, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse

from . import policy
from .choices import TicketStatus
from .models import Evidence, Ticket
from .selectors import ticket_get


def evidence_for(ticket: Ticket) -> QuerySet[Evidence]:
    """The ticket's evidence (withdrawn files too), oldest first, with who uploaded, signed
    and withdrew it; each annotated ``verdict_at`` (when its verdict was given)."""
    return (
        Evidence.objects.filter(ticket=ticket)
        .select_related("ticket", "uploaded_by", "signed_off_by", "withdrawn_by")
        .annotate(verdict_at=Coalesce(F("signed_off_at"), F("uploaded_at")))
    )


def counts_for_signoff(evidence: Evidence, ticket: Ticket) -> bool:
    """Does this item's verdict count for the ticket's sign-off (policy.verdict_counts)?
    Not when withdrawn, without a verdict, or given before the ticket's apply."""
    if evidence.withdrawn_at is not None or evidence.passed is None:
        return False
    at = evidence.signed_off_at or evidence.uploaded_at
    return policy.verdict_counts(at, ticket.deployed_at)


def evidence_use(
    ticket: Ticket, user: Any, now: dt.datetime, items: list[Evidence] | None = None
) -> policy.EvidenceUse:
    """What the quotas count: the ticket's files and bytes, and the user's bytes of the
    last 24 hours; withdrawn files do not count. ``items``: the ticket's evidence, when the
    caller has read it already (the page)."""
    kept = Evidence.objects.filter(withdrawn_at__isnull=True)
    if items is None:
        mine = kept.filter(ticket=ticket).aggregate(files=Count("id"), size=Sum("size"))
    else:
        counted = [e for e in items if e.withdrawn_at is None]
        mine = {"files": len(counted), "size": sum(e.size for e in counted)}
    recent = kept.filter(
        uploaded_by_id=user.pk, uploaded_at__gte=now - dt.timedelta(hours=24)
    ).aggregate(size=Sum("size"))
    return policy.EvidenceUse(
        ticket_files=mine["files"] or 0,
        ticket_bytes=mine["size"] or 0,
        user_bytes_today=recent["size"] or 0,
    )


def evidence_quota() -> policy.EvidenceQuota:
    from django.conf import settings

    return policy.EvidenceQuota(
        ticket_files=settings.EVIDENCE_TICKET_MAX_FILES,
        ticket_bytes=settings.EVIDENCE_TICKET_MAX_BYTES,
        user_daily_bytes=settings.EVIDENCE_USER_DAILY_BYTES,
    )


def evidence_get(user: Any, ticket_pk: int | str, evidence_pk: int | str) -> Evidence:
    """One item of a ticket the user may see; 404 otherwise (existence stays hidden)."""
    ticket = ticket_get(user, ticket_pk)
    try:
        return evidence_for(ticket).get(pk=int(evidence_pk))
    except (Evidence.DoesNotExist, ValueError):
        raise Http404("no such evidence") from None


def verdicts(ticket: Ticket) -> list[policy.Verdict]:
    """The verdicts that count for the ticket's sign-off, in the order they were given:
    not withdrawn, and given after the apply they validate (policy.verdict_counts; none
    before the ticket's first successful apply)."""
    if ticket.deployed_at is None:
        return []
    rows = (
        Evidence.objects.filter(ticket=ticket, passed__isnull=False, withdrawn_at__isnull=True)
        .annotate(at=Coalesce(F("signed_off_at"), F("uploaded_at")))
        .filter(at__gte=ticket.deployed_at)
        .order_by("at", "id")
        .values_list("kind", "passed", "filename")
    )
    return [policy.Verdict(kind, passed, filename) for kind, passed, filename in rows]


def _staging_tickets() -> QuerySet[Ticket]:
    return Ticket.objects.filter(environment__requires_qa_signoff=True).select_related(
        "environment"
    )


def _state(ticket: Ticket) -> policy.StagingEvidence:
    return policy.StagingEvidence(
        ticket_id=ticket.pk,
        url=reverse("ticket_detail", args=[ticket.pk]),
        status=ticket.status,
        commit_sha=ticket.commit_sha,
        missing=policy.signoff_missing(verdicts(ticket)),
    )


def staging_ticket_for(ticket: Ticket) -> Ticket | None:
    """The staging ticket of the same commit that a prod ticket is promoted from: the latest
    completed one, else the latest still on its way, else the latest of any state."""
    if ticket.environment.requires_qa_signoff:
        return None
    candidates = (
        _staging_tickets()
        .filter(commit_sha=ticket.commit_sha)
        .exclude(pk=ticket.pk)
        .annotate(
            rank=Case(
                When(status=TicketStatus.COMPLETED, then=Value(0)),
                When(
                    status__in=[
                        TicketStatus.CANCELLED,
                        TicketStatus.REJECTED,
                        TicketStatus.ROLLED_BACK,
                    ],
                    then=Value(2),
                ),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "-created_at", "-id")
    )
    return candidates.first()


def promotion_state(
    ticket: Ticket,
) -> tuple[policy.StagingEvidence | None, policy.StagingEvidence | None]:
    """What the promotion gate needs: the staging ticket of this commit, and (when there is
    none) the latest completed staging ticket of another commit."""
    staging = staging_ticket_for(ticket)
    if staging is not None:
        return _state(staging), None
    other = (
        _staging_tickets()
        .filter(status=TicketStatus.COMPLETED)
        .exclude(commit_sha=ticket.commit_sha)
        .order_by("-completed_at", "-id")
        .first()
    )
    return None, (_state(other) if other is not None else None)


def check_promotion(ticket: Ticket) -> None:
    """The promotion gate for this ticket, with the facts read from the database."""
    if not policy.promotion_applies(ticket):
        return
    staging, elsewhere = promotion_state(ticket)
    policy.check_promotion(ticket, staging, validated_elsewhere=elsewhere)
