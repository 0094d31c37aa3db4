"""Idempotency-Key on a multipart upload covers the file's bytes (issue 16, hole 7): a
different file of the same name and size under the same key is a different request (422),
never the first upload replayed with the second never stored."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from deployments.models import Environment, Evidence
from tests.helpers.api import api_for
from tests.helpers.evidence import stored_files
from tests.helpers.factories import TicketFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_dir")]

FIRST = b"smoke run 1: all green\n"
SECOND = b"smoke run 2: RED! red.\n"  # same length, other bytes


def _upload(user: User, ticket: Any, content: bytes, key: str) -> Any:
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/evidence/",
        {"kind": "smoke_tests", "file": SimpleUploadedFile("smoke.txt", content)},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_another_file_of_the_same_name_and_size_is_not_replayed(
    author: User, evidence_dir: Path
) -> None:
    assert len(FIRST) == len(SECOND) and FIRST != SECOND
    ticket = TicketFactory(environment=Environment.objects.get(name="dev"), author=author)
    first = _upload(author, ticket, FIRST, "run-1")
    assert first.status_code == 201, first.json()
    assert first.json()["sha256"] == hashlib.sha256(FIRST).hexdigest()
    # The same bytes again: a retry, replayed.
    retry = _upload(author, ticket, FIRST, "run-1")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    # Other bytes under the same key: refused, not passed off as the first.
    other = _upload(author, ticket, SECOND, "run-1")
    assert other.status_code == 422, other.json()
    assert "Idempotent-Replayed" not in other
    assert "different request" in other.json()["detail"]
    # Under a key of its own it is kept, byte for byte.
    kept = _upload(author, ticket, SECOND, "run-2")
    assert kept.status_code == 201
    assert kept.json()["sha256"] == hashlib.sha256(SECOND).hexdigest()
    assert Evidence.objects.filter(ticket=ticket).count() == 2
    assert sorted(p.read_bytes() for p in stored_files(evidence_dir)) == sorted([FIRST, SECOND])
