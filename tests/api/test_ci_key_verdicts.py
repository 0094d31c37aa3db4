"""A verdict is a person's act (issue 16, hole 8): a QA user's API key of scope ``ci`` may
upload evidence and report a failure, but never gives QA's pass, at upload or by sign-off
(403 with a clear detail); the same person's ``full`` key, or the page, may."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Evidence, Ticket
from deployments.services.apikeys import api_key_create
from tests.helpers.evidence import staging_ticket

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_dir")]


def _keyed(user: User, scope: str) -> APIClient:
    key = api_key_create(actor="test", user=user, name=f"{scope} key", scope=scope)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _upload(client: APIClient, ticket: Ticket, kind: str, passed: str | None) -> object:
    data = {"kind": kind, "file": SimpleUploadedFile(f"{kind}.txt", f"{kind} ok\n".encode())}
    if passed is not None:
        data["passed"] = passed
    return client.post(f"/api/v1/tickets/{ticket.pk}/evidence/", data, format="multipart")


def test_a_ci_key_never_passes_evidence_and_never_completes_a_ticket(
    author: User, qa: User, evidence_dir: Path
) -> None:
    ticket = staging_ticket(author)
    ci = _keyed(qa, "ci")
    for kind in ("smoke_tests", "qa_report"):
        refused = _upload(ci, ticket, kind, "true")
        assert refused.status_code == 403, refused.json()  # type: ignore[attr-defined]
        assert "a verdict of passed is a person's act" in refused.json()["detail"]  # type: ignore[attr-defined]
        assert "scope 'ci'" in refused.json()["detail"]  # type: ignore[attr-defined]
    assert not Evidence.objects.exists() and not list(evidence_dir.rglob("*.bin"))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING
    refusal = AuditEvent.objects.filter(action="access.refused").last()
    assert refusal is not None and refusal.ticket_id == ticket.pk
    # CI may still upload the run and report a failure; QA's verdict waits for a person.
    assert _upload(ci, ticket, "smoke_tests", None).status_code == 201  # type: ignore[attr-defined]
    failed = _upload(ci, ticket, "smoke_tests", "false")
    assert failed.status_code == 201, failed.json()  # type: ignore[attr-defined]
    pending = Evidence.objects.filter(passed__isnull=True).get()
    signoff = ci.post(
        f"/api/v1/tickets/{ticket.pk}/evidence/{pending.pk}/signoff/",
        {"passed": True},
        format="json",
    )
    assert signoff.status_code == 403 and "scope 'ci'" in signoff.json()["detail"]
    pending.refresh_from_db()
    assert pending.passed is None
    # The same QA person with a full key gives the verdicts, and completes the ticket.
    full = _keyed(qa, "full")
    for kind in ("smoke_tests", "qa_report"):
        assert _upload(full, ticket, kind, "true").status_code == 201  # type: ignore[attr-defined]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED


def test_the_service_refuses_a_ci_keys_pass_too(author: User, qa: User) -> None:
    from deployments import policy, services

    ticket = staging_ticket(author)
    with pytest.raises(policy.PolicyError) as refused:
        services.evidence_upload(
            ticket_id=ticket.pk,
            actor=qa,
            file=SimpleUploadedFile("smoke.txt", b"ok\n"),
            kind="smoke_tests",
            passed=True,
            ci_key=True,
        )
    assert refused.value.kind == policy.PolicyError.ACTOR
    item = services.evidence_upload(
        ticket_id=ticket.pk,
        actor=qa,
        file=SimpleUploadedFile("smoke.txt", b"ok\n"),
        kind="smoke_tests",
    )
    with pytest.raises(policy.PolicyError, match="a sign-off is a person's act"):
        services.evidence_sign_off(
            ticket_id=ticket.pk, evidence_id=item.pk, actor=qa, passed=True, ci_key=True
        )
