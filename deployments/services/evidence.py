"""Testing evidence: uploads kept byte for byte, QA's verdicts, and what they complete."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import TicketStatus
from deployments.lib import uploads, validation
from deployments.models import Evidence, EvidenceKind, Ticket
from deployments.selectors import evidence as evidence_selectors
from deployments.selectors import user_roles
from deployments.services._base import InputError, locked_ticket, transition
from deployments.services.audit import audit_record

NOTE_MAX = validation.COMMENT_MAX


def _digest(file: File[Any]) -> tuple[str, int, bytes]:
    """SHA-256, size and first bytes of a file, read in chunks (never whole into memory)."""
    sha = hashlib.sha256()
    size = 0
    head = b""
    file.seek(0)
    for chunk in file.chunks():
        if len(head) < uploads.SNIFF_BYTES:
            head += chunk[: uploads.SNIFF_BYTES - len(head)]
        sha.update(chunk)
        size += len(chunk)
    file.seek(0)
    return sha.hexdigest(), size, head


def evidence_upload(
    *,
    ticket_id: int,
    actor: Any,
    file: File[Any],
    kind: str,
    passed: bool | None = None,
    note: str = "",
    ci_key: bool = False,
) -> Evidence:
    """Keep one file as evidence of a ticket, with its digest and sniffed type; a verdict
    given with it (QA's pass, anyone's fail) may complete or flag a staging ticket.
    ``ci_key``: sent with an API key of scope ``ci``, which gives no pass."""
    if kind not in EvidenceKind.values:
        raise InputError("kind", f"kind must be one of {', '.join(EvidenceKind.values)}")
    note = validation.clean_text(note, "note", NOTE_MAX)
    filename = uploads.safe_filename(str(getattr(file, "name", "") or ""))
    sha256, size, head = _digest(file)
    if size == 0:
        raise InputError("file", "the file is empty")
    content_type = uploads.sniff_content_type(head)
    try:
        return _keep(
            ticket_id,
            actor,
            file,
            kind,
            passed,
            note,
            filename,
            sha256,
            size,
            content_type,
            ci_key=ci_key,
        )
    finally:
        if hasattr(file, "temporary_file_path"):
            # Local storage moved the temporary file into place; closing the upload now
            # (not at garbage collection) tolerates that it is gone.
            file.close()


def _keep(
    ticket_id: int,
    actor: Any,
    file: File[Any],
    kind: str,
    passed: bool | None,
    note: str,
    filename: str,
    sha256: str,
    size: int,
    content_type: str,
    *,
    ci_key: bool = False,
) -> Evidence:
    """The transaction of evidence_upload: rule check, file, row, audit, verdict."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        roles = user_roles(actor)
        policy.check_may_upload_evidence(
            ticket, user_roles=roles, kind=kind, passed=passed, ci_key=ci_key
        )
        now = timezone.now()
        # The uploader's row too: their quota spans tickets, and two uploads to two tickets
        # must not both fit the last free bytes.
        get_user_model().objects.select_for_update().filter(pk=actor.pk).exists()
        policy.check_evidence_quota(
            evidence_selectors.evidence_use(ticket, actor, now),
            size,
            evidence_selectors.evidence_quota(),
        )
        evidence = Evidence(
            ticket=ticket,
            kind=kind,
            passed=passed,
            token=secrets.token_hex(16),
            filename=filename,
            size=size,
            sha256=sha256,
            content_type=content_type,
            uploaded_by=actor,
        )
        if passed is not None:
            evidence.signed_off_by = actor if passed else None
            evidence.signed_off_at = now if passed else None
            evidence.signoff_note = note
        evidence.file.save(filename, file, save=False)
        try:
            evidence.save()
            audit_record(
                actor=actor,
                action="evidence.upload",
                ticket=ticket,
                data={
                    "evidence": evidence.pk,
                    "kind": kind,
                    "passed": passed,
                    "filename": filename,
                    "size": size,
                    "sha256": sha256,
                    "content_type": content_type,
                },
            )
            if passed is not None:
                _after_verdict(ticket, actor=actor)
        except BaseException:
            evidence.file.storage.delete(evidence.file.name)
            raise
        return evidence


def evidence_sign_off(
    *,
    ticket_id: int,
    evidence_id: int,
    actor: Any,
    passed: bool,
    note: str = "",
    ci_key: bool = False,
) -> Evidence:
    """QA's verdict on one item (once per item); passes may complete a staging ticket."""
    note = validation.clean_text(note, "note", NOTE_MAX)
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        try:
            evidence = Evidence.objects.select_for_update().get(pk=evidence_id, ticket=ticket)
        except Evidence.DoesNotExist:
            raise InputError("evidence", "no such evidence on this ticket") from None
        signer = evidence.signed_off_by.get_username() if evidence.signed_off_by else ""
        policy.check_may_sign_off(
            ticket,
            user_roles=user_roles(actor),
            signed_off_by=signer,
            verdict=evidence.passed,
            reported_by=evidence.uploaded_by.get_username(),
            ci_key=ci_key,
        )
        evidence.passed = passed
        evidence.signed_off_by = actor
        evidence.signed_off_at = timezone.now()
        evidence.signoff_note = note
        evidence.save(update_fields=["passed", "signed_off_by", "signed_off_at", "signoff_note"])
        audit_record(
            actor=actor,
            action="evidence.signoff",
            ticket=ticket,
            data={
                "evidence": evidence.pk,
                "kind": evidence.kind,
                "passed": passed,
                "filename": evidence.filename,
                "reason": note,
            },
        )
        _after_verdict(ticket, actor=actor)
        return evidence


def evidence_withdraw(*, ticket_id: int, evidence_id: int, actor: Any, reason: str) -> Evidence:
    """Its uploader or QA withdraws a file the ticket has not finished with: it stops
    counting for the sign-off gate and the quotas at once; its bytes are kept until
    EVIDENCE_WITHDRAWN_RETENTION_DAYS have passed (evidence_purge deletes them)."""
    reason = validation.clean_text(reason, "reason", NOTE_MAX).strip()
    if not reason:
        raise InputError("reason", "say why the file is withdrawn")
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        try:
            evidence = Evidence.objects.select_for_update().get(pk=evidence_id, ticket=ticket)
        except Evidence.DoesNotExist:
            raise InputError("evidence", "no such evidence on this ticket") from None
        policy.check_may_withdraw_evidence(
            ticket,
            user_id=actor.pk,
            user_roles=user_roles(actor),
            uploaded_by_id=evidence.uploaded_by_id,
            withdrawn=evidence.withdrawn_at is not None,
        )
        evidence.withdrawn_at = timezone.now()
        evidence.withdrawn_by = actor
        evidence.withdraw_reason = reason
        evidence.save(update_fields=["withdrawn_at", "withdrawn_by", "withdraw_reason"])
        audit_record(
            actor=actor,
            action="evidence.withdraw",
            ticket=ticket,
            data={
                "evidence": evidence.pk,
                "kind": evidence.kind,
                "passed": evidence.passed,
                "filename": evidence.filename,
                "sha256": evidence.sha256,
                "size": evidence.size,
                "reason": reason,
            },
        )
        if ticket.status_reason.startswith("smoke tests failed (") and not (
            policy.failed_smoke_tests(evidence_selectors.verdicts(ticket))
        ):
            # The failure that flagged the ticket is withdrawn: the flag goes with it.
            ticket.status_reason = "monitoring: the failed smoke tests were withdrawn"
            ticket.save(update_fields=["status_reason", "updated_at"])
            audit_record(
                actor=actor, action="ticket.flag", ticket=ticket, data={"reason": "cleared"}
            )
        _after_verdict(ticket, actor=actor)  # what is left may complete it
        return evidence


def evidence_purge(*, now: dt.datetime | None = None) -> int:
    """Beat: delete the bytes of files withdrawn more than EVIDENCE_WITHDRAWN_RETENTION_DAYS
    ago (the row, its digest and the audit trail stay); returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.EVIDENCE_WITHDRAWN_RETENTION_DAYS)
    done = 0
    due = Evidence.objects.filter(withdrawn_at__lte=cutoff, purged_at__isnull=True)
    for pk in list(due.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            evidence = (
                Evidence.objects.select_for_update()
                .filter(pk=pk, purged_at__isnull=True)
                .select_related("ticket")
                .first()
            )
            if evidence is None:
                continue
            evidence.file.storage.delete(evidence.file.name)
            evidence.purged_at = now
            evidence.save(update_fields=["purged_at"])
            audit_record(
                actor="system",
                action="evidence.purge",
                ticket=evidence.ticket,
                data={
                    "evidence": evidence.pk,
                    "filename": evidence.filename,
                    "sha256": evidence.sha256,
                    "withdrawn_at": evidence.withdrawn_at.isoformat()
                    if evidence.withdrawn_at
                    else None,
                },
            )
        done += 1
    return done


def _after_verdict(ticket: Ticket, *, actor: Any, who: str = "") -> None:
    """A failed smoke test marks the ticket; passed smoke tests and QA report complete it.
    Only verdicts given after the apply they validate count (evidence_selectors.verdicts)."""
    found = evidence_selectors.verdicts(ticket)
    if not policy.completes_on_signoff(ticket):
        return
    failed = policy.failed_smoke_tests(found)
    if failed is not None:
        reason = (
            f"smoke tests failed ({failed.filename}); it stays monitoring until QA passes new "
            "smoke-test evidence, or it is rolled back"
        )
        if ticket.status_reason != reason:
            ticket.status_reason = reason
            ticket.save(update_fields=["status_reason", "updated_at"])
            audit_record(
                actor=actor,
                action="ticket.flag",
                ticket=ticket,
                data={"reason": reason, "filename": failed.filename},
            )
        return
    if policy.signoff_missing(found):
        return
    transition(
        ticket,
        TicketStatus.COMPLETED,
        actor=actor,
        reason=f"{who or f'signed off by QA ({actor.get_username()})'}: smoke tests and QA "
        "report passed",
    )
