"""Reads of testing evidence and of the staging ticket a prod ticket is promoted from."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, F, IntegerField, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse

from deployments import policy
from deployments.choices import TicketStatus
from deployments.models import Evidence, Ticket
from deployments.selectors.access import ticket_get, visible_ticket_ids


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


def download_url(evidence: Evidence) -> str:
    """Where the file is downloaded (checked against its SHA-256 first)."""
    return reverse("api:ticket-evidence-download", args=[evidence.ticket_id, evidence.pk])


@dataclass(frozen=True)
class EvidenceRow:
    """One evidence item as a viewer sees it on a ticket."""

    item: Evidence
    download_url: str
    counts: bool  # its verdict counts for the sign-off (counts_for_signoff)
    may_withdraw: bool  # this viewer may withdraw it now


@dataclass(frozen=True)
class StagingView:
    """The staging ticket a prod ticket is promoted from, as a viewer who may see it sees it."""

    ticket: Ticket
    missing: tuple[str, ...]  # what its sign-off still lacks
    evidence: list[EvidenceRow]

    @property
    def validated(self) -> bool:
        return self.ticket.status == TicketStatus.COMPLETED and not self.missing


def _rows(
    ticket: Ticket, items: list[Evidence], user: Any, roles: frozenset[str]
) -> list[EvidenceRow]:
    rows = []
    for item in items:
        try:
            policy.check_may_withdraw_evidence(
                ticket,
                user_id=user.pk,
                user_roles=roles,
                uploaded_by_id=item.uploaded_by_id,
                withdrawn=item.withdrawn_at is not None,
            )
            may_withdraw = True
        except policy.PolicyError:
            may_withdraw = False
        rows.append(
            EvidenceRow(item, download_url(item), counts_for_signoff(item, ticket), may_withdraw)
        )
    return rows


def staging_view(ticket: Ticket, user: Any) -> StagingView | None:
    """The staging ticket of the same commit (None when there is none, or when the viewer may
    not see it)."""
    staging = staging_ticket_for(ticket)
    if staging is None or staging.pk not in visible_ticket_ids(user, [staging.pk]):
        return None
    missing = policy.signoff_missing(verdicts(staging))
    rows = [
        EvidenceRow(item, download_url(item), counts_for_signoff(item, staging), False)
        for item in evidence_for(staging)
    ]
    return StagingView(ticket=staging, missing=missing, evidence=rows)


class EvidenceSection:
    """A ticket's evidence, QA's sign-off and the promotion gate, as one viewer sees them
    (the ticket page and the API detail); each part read once, when first asked for."""

    def __init__(self, ticket: Ticket, user: Any, roles: frozenset[str], now: dt.datetime):
        self.ticket, self.user, self.roles, self.now = ticket, user, roles, now
        self.is_qa = policy.QA_ROLE in roles
        # A ticket QA's sign-off completes (staging).
        self.staging_env = bool(ticket.environment.requires_qa_signoff)
        # The promotion gate applies (a normal prod ticket).
        self.promotion = policy.promotion_applies(ticket)

    @functools.cached_property
    def rows(self) -> list[EvidenceRow]:
        return _rows(self.ticket, list(evidence_for(self.ticket)), self.user, self.roles)

    @property
    def items(self) -> list[Evidence]:
        return [row.item for row in self.rows]

    @functools.cached_property
    def _upload_refusal(self) -> str | None:
        try:
            policy.check_may_upload_evidence(
                self.ticket, user_roles=self.roles, kind="other", passed=None
            )
        except policy.PolicyError as exc:
            return exc.message
        return None

    @property
    def can_upload(self) -> bool:
        return self._upload_refusal is None

    @property
    def closed(self) -> str:
        """Why no evidence is taken any more ("" while it is)."""
        return self._upload_refusal or ""

    @functools.cached_property
    def _verdicts(self) -> list[policy.Verdict]:
        return verdicts(self.ticket)

    @property
    def missing(self) -> tuple[str, ...]:
        """What QA's sign-off of a staging ticket still lacks."""
        return policy.signoff_missing(self._verdicts) if self.staging_env else ()

    @property
    def failed(self) -> policy.Verdict | None:
        """The failed smoke-test run that still stands."""
        return policy.failed_smoke_tests(self._verdicts) if self.staging_env else None

    @functools.cached_property
    def staging(self) -> StagingView | None:
        """The staging ticket of the same commit (the API names it for any ticket)."""
        return staging_view(self.ticket, self.user)

    @property
    def staging_shown(self) -> StagingView | None:
        """The page shows it where the promotion gate applies."""
        return self.staging if self.promotion else None

    @functools.cached_property
    def promotion_gate(self) -> str:
        """Why the promotion gate refuses approval ("" when it does not)."""
        if not self.promotion:
            return ""
        ticket = self.ticket
        try:
            check_promotion(ticket)
        except policy.PolicyError as exc:
            named = [s.ticket_id for s in promotion_state(ticket) if s]
            if set(named) - visible_ticket_ids(self.user, named):
                # The refusal names a staging ticket this viewer may not see: say what is
                # needed without it.
                return (
                    f"{ticket.environment.name} needs commit {ticket.commit_sha[:10]} validated "
                    "in staging first (a completed staging ticket with passed smoke_tests and "
                    "qa_report)"
                )
            return exc.message
        return ""

    @functools.cached_property
    def use(self) -> policy.EvidenceUse:
        return evidence_use(self.ticket, self.user, self.now, self.items)

    @property
    def quota(self) -> policy.EvidenceQuota:
        return evidence_quota()
