"""Testing evidence: uploads kept byte for byte, QA's verdicts, and what they complete."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from deployments import evidence_selectors, policy, uploads, validation
from deployments.choices import TicketStatus
from deployments.models import Evidence, EvidenceKind, Ticket
from deployments.selectors import user_roles

from ._base import InputError, locked_ticket, transition
from .audit import audit_record

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


def evidence_after_apply(ticket: Ticket) -> None:
    """A staging apply that finished after QA had already given both verdicts completes
    at once (the verdicts were waiting for the ticket to reach monitoring)."""
    _after_verdict(ticket, actor="worker", who="QA had signed off before the apply finished")


def _after_verdict(ticket: Ticket, *, actor: Any, who: str = "") -> None:
    """A failed smoke test marks the ticket; passed smoke tests and QA report complete it."""
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
