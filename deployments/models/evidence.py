"""Testing evidence: files kept byte for byte, each with its digest, verdict and sign-off."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.lib.storage import evidence_storage
from deployments.models._base import _choices_check
from deployments.models.tickets import Ticket


class EvidenceKind(models.TextChoices):
    QA_REPORT = "qa_report", "QA report"
    SMOKE_TESTS = "smoke_tests", "Smoke tests"
    SCREENSHOT = "screenshot", "Screenshot"
    OTHER = "other", "Other"


def evidence_upload_to(evidence: Evidence, filename: str) -> str:
    """A name the portal picks (never the client's): ticket folder, random part, no path."""
    return f"evidence/ticket-{evidence.ticket_id}/{evidence.token}.bin"


class Evidence(models.Model):
    """One uploaded file; rows and files are never overwritten, only signed off once, or
    withdrawn (the bytes deleted only once the retention period is over)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=16, choices=EvidenceKind.choices)
    # None: no verdict yet; False: failed (anyone may report a failure); True: QA passed it.
    passed = models.BooleanField(null=True, blank=True)
    token = models.CharField(max_length=32, unique=True, editable=False)
    file = models.FileField(upload_to=evidence_upload_to, storage=evidence_storage, max_length=255)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    signoff_note = models.TextField(blank=True)
    # Withdrawn by its uploader or QA while unused (policy.check_may_withdraw_evidence): it
    # no longer counts for the sign-off gate nor the quotas; its bytes stay until
    # EVIDENCE_WITHDRAWN_RETENTION_DAYS have passed, then the beat task deletes them.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdraw_reason = models.TextField(blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["uploaded_at", "id"]
        verbose_name_plural = "evidence"
        constraints = [
            _choices_check("kind", EvidenceKind, "evidence_kind_valid"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="evidence_sha256_hex64"
            ),
            # A pass is always a QA sign-off: who and when are recorded with it.
            models.CheckConstraint(
                condition=~Q(passed=True)
                | (Q(signed_off_by__isnull=False) & Q(signed_off_at__isnull=False)),
                name="evidence_pass_is_signed_off",
            ),
            # Only a withdrawn file's bytes are ever deleted.
            models.CheckConstraint(
                condition=Q(purged_at__isnull=True) | Q(withdrawn_at__isnull=False),
                name="evidence_purged_only_when_withdrawn",
            ),
        ]
        indexes = [
            # The per-user quota sums a person's recent uploads.
            models.Index(fields=["uploaded_by", "uploaded_at"], name="evidence_uploader_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.filename} (ticket #{self.ticket_id})"
