"""Evidence is bounded (issue 16, hole 12): taken only while the ticket can still use it,
within per-ticket and per-person quotas; its uploader or QA may withdraw a file the ticket
has not finished with (audited), which then stops counting for the sign-off and the
quotas, its bytes kept until the retention period ends and a beat task deletes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Environment, Evidence, Ticket
from tests.helpers.api import api_for
from tests.helpers.evidence import staging_ticket, stored_files, upload
from tests.helpers.factories import TicketFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_dir")]


def _dev(author: User, status: str) -> Ticket:
    return TicketFactory(
        environment=Environment.objects.get(name="dev"), author=author, status=status
    )


def _withdraw(user: User, item_id: int, ticket: Ticket, reason: str = "wrong file") -> Any:
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/evidence/{item_id}/withdraw/",
        {"reason": reason},
        format="json",
    )


@pytest.mark.parametrize("status", ["completed", "cancelled", "rejected", "rolled_back"])
def test_a_finished_ticket_takes_no_more_evidence(
    author: User, evidence_dir: Path, status: str
) -> None:
    ticket = _dev(author, status)
    for n in range(12):  # the attack: a dozen files at a completed ticket
        response = upload(author, ticket, b"x" * 1024, name=f"f{n}.bin", kind="other")
        assert response.status_code == 409, response.json()
        assert (
            f"a ticket that is {status.replace('_', ' ')} takes no more evidence"
            in (response.json()["detail"])
        )
    assert not Evidence.objects.exists() and stored_files(evidence_dir) == []
    html = _page(author, ticket)
    assert 'id="evidence-closed"' in html and 'id="evidence-form"' not in html


@pytest.mark.parametrize(
    "status", ["awaiting_approval", "approved", "applying", "monitoring", "apply_failed"]
)
def test_a_ticket_that_can_still_use_evidence_takes_it(author: User, status: str) -> None:
    assert upload(author, _dev(author, status), kind="other").status_code == 201


def test_the_per_ticket_file_quota_and_withdrawing_frees_it(
    settings: Any, author: User, evidence_dir: Path
) -> None:
    settings.EVIDENCE_TICKET_MAX_FILES = 3
    ticket = _dev(author, TicketStatus.MONITORING)
    ids = [upload(author, ticket, f"{n}\n".encode(), kind="other").json()["id"] for n in range(3)]
    refused = upload(author, ticket, b"one more\n", kind="other")
    assert refused.status_code == 409
    assert "EVIDENCE_TICKET_MAX_FILES = 3" in refused.json()["detail"]
    assert len(stored_files(evidence_dir)) == 3
    assert _withdraw(author, ids[0], ticket).status_code == 200
    assert upload(author, ticket, b"one more\n", kind="other").status_code == 201


def test_the_per_ticket_byte_quota(settings: Any, author: User) -> None:
    settings.EVIDENCE_TICKET_MAX_BYTES = 10_000
    ticket = _dev(author, TicketStatus.MONITORING)
    assert upload(author, ticket, b"a" * 6_000, kind="other").status_code == 201
    refused = upload(author, ticket, b"b" * 6_000, kind="other")
    assert refused.status_code == 409
    assert "EVIDENCE_TICKET_MAX_BYTES" in refused.json()["detail"]


def test_the_per_person_daily_quota_spans_tickets(
    settings: Any, author: User, developer: User
) -> None:
    settings.EVIDENCE_USER_DAILY_BYTES = 10_000
    first, second = (_dev(author, TicketStatus.MONITORING) for _ in range(2))
    now = timezone.now()
    with time_machine.travel(now - dt.timedelta(hours=25), tick=False):
        assert upload(author, first, b"y" * 9_000, kind="other").status_code == 201
    with time_machine.travel(now, tick=False):
        assert upload(author, first, b"a" * 6_000, kind="other").status_code == 201
        refused = upload(author, second, b"b" * 6_000, kind="other")
        assert refused.status_code == 409
        assert "in the last 24 hours" in refused.json()["detail"]
        assert "EVIDENCE_USER_DAILY_BYTES" in refused.json()["detail"]
        # Another person's quota is their own.
        assert upload(developer, second, b"b" * 6_000, kind="other").status_code == 201


def test_who_may_withdraw_and_when(author: User, developer: User, qa: User, lead: User) -> None:
    ticket = staging_ticket(author)
    mine = upload(author, ticket, kind="other").json()["id"]
    other = upload(developer, ticket, kind="other").json()["id"]
    refused = _withdraw(author, other, ticket)
    assert refused.status_code == 403
    assert "only the person who uploaded a file, or QA" in refused.json()["detail"]
    assert _withdraw(lead, mine, ticket).status_code == 403
    done = _withdraw(author, mine, ticket, reason="uploaded the wrong log")
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["withdrawn_by"] == author.username and body["withdraw_reason"] == (
        "uploaded the wrong log"
    )
    assert body["withdrawn_at"] and body["purged"] is False
    assert _withdraw(author, mine, ticket).status_code == 409  # once
    assert _withdraw(qa, other, ticket).status_code == 200  # QA may withdraw anyone's
    assert (
        api_for(author)
        .post(f"/api/v1/tickets/{ticket.pk}/evidence/{mine}/withdraw/", {}, format="json")
        .status_code
        == 400
    )  # a reason is required
    event = AuditEvent.objects.filter(action="evidence.withdraw").order_by("id").first()
    assert event is not None and event.ticket_id == ticket.pk
    assert event.data["reason"] == "uploaded the wrong log" and event.data["evidence"] == mine
    # A completed ticket keeps its evidence: part of its record.
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.COMPLETED)
    late = Evidence.objects.create(
        ticket=ticket,
        kind="other",
        token="t" * 32,
        file="x",
        filename="x",
        size=1,
        sha256="0" * 64,
        content_type="text/plain",
        uploaded_by=author,
    )
    kept = _withdraw(author, late.pk, ticket)
    assert kept.status_code == 409 and "keeps its evidence" in kept.json()["detail"]


def test_a_withdrawn_verdict_stops_counting_for_the_sign_off(author: User, qa: User) -> None:
    ticket = staging_ticket(author)
    smoke = upload(qa, ticket, kind="smoke_tests", passed=True).json()["id"]
    assert _withdraw(qa, smoke, ticket, reason="ran against the wrong build").status_code == 200
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING  # the withdrawn pass does not count
    body = api_for(qa).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [e["counts_for_signoff"] for e in body["evidence"]] == [False, True]
    upload(qa, ticket, kind="smoke_tests", passed=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED


def test_a_withdrawn_failure_clears_the_flag_it_raised(author: User, qa: User) -> None:
    ticket = staging_ticket(author)
    failed = upload(author, ticket, kind="smoke_tests", passed=False).json()["id"]
    ticket.refresh_from_db()
    assert ticket.status_reason.startswith("smoke tests failed")
    assert _withdraw(qa, failed, ticket, reason="flaky runner, not the change").status_code == 200
    ticket.refresh_from_db()
    assert not ticket.status_reason.startswith("smoke tests failed")


def test_the_bytes_are_kept_until_the_retention_ends_then_purged(
    settings: Any, author: User, evidence_dir: Path
) -> None:
    settings.EVIDENCE_WITHDRAWN_RETENTION_DAYS = 30
    ticket = _dev(author, TicketStatus.MONITORING)
    item = upload(author, ticket, b"keep me a while\n", kind="other").json()
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        assert _withdraw(author, item["id"], ticket).status_code == 200
    download = f"/api/v1/tickets/{ticket.pk}/evidence/{item['id']}/download/"
    with time_machine.travel(now + dt.timedelta(days=29), tick=False):
        assert services.evidence_purge() == 0
    response = api_for(author).get(download)
    assert response.status_code == 200 and b"".join(response.streaming_content) == (
        b"keep me a while\n"
    )
    with time_machine.travel(now + dt.timedelta(days=30, minutes=1), tick=False):
        assert services.evidence_purge() == 1
        assert services.evidence_purge() == 0  # once
    assert stored_files(evidence_dir) == []
    row = Evidence.objects.get(pk=item["id"])
    assert row.purged_at is not None and row.sha256 == item["sha256"]  # the record stays
    gone = api_for(author).get(download)
    assert gone.status_code == 410 and "retention" in gone.json()["detail"]
    purge = AuditEvent.objects.get(action="evidence.purge")
    assert purge.ticket_id == ticket.pk and purge.actor_name == "system"


def _page(user: User, ticket: Ticket) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/tickets/{ticket.pk}/").content.decode()


def test_the_page_offers_withdraw_to_the_uploader_and_qa(
    author: User, developer: User, qa: User
) -> None:
    ticket = staging_ticket(author)
    item = upload(author, ticket, kind="other").json()["id"]
    assert f'id="withdraw-{item}-form"' in _page(author, ticket)
    assert f'id="withdraw-{item}-form"' in _page(qa, ticket)
    assert f'id="withdraw-{item}-form"' not in _page(developer, ticket)
    assert "of 100 files" in _page(author, ticket)
    client = Client()
    client.force_login(developer)
    client.post(f"/tickets/{ticket.pk}/evidence/{item}/withdraw/", {"reason": "not mine"})
    assert Evidence.objects.get(pk=item).withdrawn_at is None
    client.force_login(author)
    client.post(f"/tickets/{ticket.pk}/evidence/{item}/withdraw/", {"reason": "duplicate"})
    assert Evidence.objects.get(pk=item).withdrawn_at is not None
    assert f'id="withdrawn-{item}"' in _page(author, ticket)
