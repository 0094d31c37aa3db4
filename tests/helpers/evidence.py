"""Evidence in tests: a private storage per test, uploads, and a commit validated in staging."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import TicketFactory, UserFactory

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81"
    b"\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def stored_files(location: Path) -> list[Path]:
    return [p for p in location.rglob("*") if p.is_file()] if location.exists() else []


def staging_ticket(author: User, *, status: str = TicketStatus.MONITORING, **extra: Any) -> Ticket:
    """A staging ticket that has been applied (a second ago, unless ``deployed_at`` says
    otherwise) and waits for QA (written directly). Tickets not applied yet have none."""
    from django.utils import timezone

    applied = status in (TicketStatus.MONITORING, TicketStatus.COMPLETED)
    if applied:
        extra.setdefault("deployed_at", timezone.now() - dt.timedelta(seconds=1))
    return TicketFactory(
        environment=Environment.objects.get(name="staging"), author=author, status=status, **extra
    )


def upload(
    user: User | None,
    ticket: Ticket,
    content: bytes = b"all smoke tests passed\n",
    *,
    name: str = "smoke.txt",
    kind: str = "smoke_tests",
    passed: bool | None = None,
    note: str = "",
) -> Any:
    data: dict[str, Any] = {"file": SimpleUploadedFile(name, content), "kind": kind}
    if passed is not None:
        data["passed"] = "true" if passed else "false"
    if note:
        data["note"] = note
    return api_for(user).post(f"/api/v1/tickets/{ticket.pk}/evidence/", data, format="multipart")


def validate_in_staging(commit_sha: str, *, qa: User | None = None) -> Ticket:
    """A staging ticket of ``commit_sha`` signed off by QA (passed smoke tests and report):
    what the promotion gate asks of a normal prod ticket. Needs an evidence storage."""
    from django.contrib.auth.models import Group

    qa = qa or UserFactory(username="qa-staging")
    qa.groups.add(Group.objects.get(name="qa"))
    ticket = staging_ticket(UserFactory(username="staging-author"), commit_sha=commit_sha)
    for kind, name in (("smoke_tests", "smoke.txt"), ("qa_report", "report.txt")):
        services.evidence_upload(
            ticket_id=ticket.pk,
            actor=qa,
            file=SimpleUploadedFile(name, f"{kind} passed\n".encode()),
            kind=kind,
            passed=True,
        )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    return ticket
