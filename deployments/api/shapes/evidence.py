"""Evidence as the API shows it: an item, and the staging ticket a prod ticket is promoted
from (selectors.evidence.StagingView)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from deployments.models import Evidence
from deployments.selectors import evidence as evidence_selectors


class EvidenceSerializer(serializers.ModelSerializer[Evidence]):
    """One evidence item as the ticket detail and the upload answer show it."""

    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)  # type: ignore[var-annotated]
    signed_off_by = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="username", read_only=True, allow_null=True
    )
    download_url = serializers.SerializerMethodField()
    withdrawn_by = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="username", read_only=True, allow_null=True
    )
    purged = serializers.SerializerMethodField()
    counts_for_signoff = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "ticket",
            "kind",
            "passed",
            "filename",
            "size",
            "sha256",
            "content_type",
            "download_url",
            "uploaded_by",
            "uploaded_at",
            "signed_off_by",
            "signed_off_at",
            "signoff_note",
            "counts_for_signoff",
            "withdrawn_at",
            "withdrawn_by",
            "withdraw_reason",
            "purged",
        ]

    def get_download_url(self, evidence: Evidence) -> str:
        return evidence_selectors.download_url(evidence)

    def get_purged(self, evidence: Evidence) -> bool:
        """True once a withdrawn file's retention ended and its bytes were deleted."""
        return evidence.purged_at is not None

    def get_counts_for_signoff(self, evidence: Evidence) -> bool:
        """Does its verdict count for the ticket's QA sign-off? Only one given after the
        ticket's apply, on a file not withdrawn (a verdict given before the apply does
        not: it speaks of a state not deployed yet)."""
        return evidence_selectors.counts_for_signoff(evidence, evidence.ticket)


class StagingTicketSerializer(serializers.Serializer[Any]):
    """The staging ticket a prod ticket is promoted from, and its evidence."""

    id = serializers.IntegerField()
    url = serializers.CharField()
    web_url = serializers.CharField()
    status = serializers.CharField()
    commit_sha = serializers.CharField()
    validated = serializers.BooleanField(help_text="Completed with passed QA evidence.")
    missing = serializers.ListField(child=serializers.CharField())
    evidence = EvidenceSerializer(many=True)


def staging_ticket_out(staging: evidence_selectors.StagingView | None) -> dict[str, Any] | None:
    """The ``staging_ticket`` field of a ticket's detail (None when there is none, or when
    the viewer may not see it: the view leaves it out)."""
    if staging is None:
        return None
    ticket = staging.ticket
    return {
        "id": ticket.pk,
        "url": reverse("api:ticket-detail", args=[ticket.pk]),
        "web_url": reverse("ticket_detail", args=[ticket.pk]),
        "status": ticket.status,
        "commit_sha": ticket.commit_sha,
        "validated": staging.validated,
        "missing": list(staging.missing),
        "evidence": EvidenceSerializer([row.item for row in staging.evidence], many=True).data,
    }
