"""Idempotency-Key on POST /api/v1/tickets/: a retry replays the first answer and files
nothing new; another body with the same key is a 422; concurrent twins file once (run on
PostgreSQL in CI, where the unique index makes the second wait for the first)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from deployments.models import IdempotencyRecord, Ticket
from deployments.services.apikeys import idempotency_cleanup
from tests.helpers.api import api_for

BODY = {"title": "Scale app servers", "environment": "dev"}
URL = "/api/v1/tickets/"


def post(user: User, body: dict[str, Any], key: str | None) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api_for(user).post(URL, body, format="json", **headers)


@pytest.mark.django_db
def test_a_retry_replays_the_first_answer_and_files_nothing(author: User, head_sha: str) -> None:
    first = post(author, BODY, "ci-run-41-attempt")
    assert first.status_code == 201, first.json()
    again = post(author, BODY, "ci-run-41-attempt")
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Ticket.objects.count() == 1


@pytest.mark.django_db
def test_without_a_key_each_post_files_a_ticket(author: User, head_sha: str) -> None:
    assert post(author, BODY, None).status_code == 201
    assert post(author, BODY, None).status_code == 201
    assert Ticket.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(author: User, head_sha: str) -> None:
    assert post(author, BODY, "k-1").status_code == 201
    other = post(author, {**BODY, "title": "Something else"}, "k-1")
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]
    assert Ticket.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_user(author: User, developer: User, head_sha: str) -> None:
    mine = post(author, BODY, "shared-key")
    theirs = post(developer, BODY, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db
def test_a_refused_request_is_not_remembered(author: User, head_sha: str) -> None:
    bad = post(author, {"title": "x", "environment": "nowhere"}, "k-2")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    fixed = post(author, BODY, "k-2")
    assert fixed.status_code == 201
    assert Ticket.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400(author: User, head_sha: str, key: str) -> None:
    response = post(author, BODY, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_records_are_forgotten_after_24_hours(author: User, head_sha: str) -> None:
    post(author, BODY, "old")
    with time_machine.travel(timezone.now() + dt.timedelta(hours=23)):
        assert idempotency_cleanup() == 0
    with time_machine.travel(timezone.now() + dt.timedelta(hours=24, minutes=1)):
        assert idempotency_cleanup() == 1
    assert post(author, BODY, "old").status_code == 201
    assert Ticket.objects.count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_twins_file_one_ticket(author: User, head_sha: str, attempt: int) -> None:
    twins = 4
    barrier = threading.Barrier(twins)
    answers: list[Any] = [None] * twins

    def send(index: int) -> None:
        try:
            barrier.wait()
            answers[index] = post(author, BODY, f"race-{attempt}")
        except BaseException as exc:
            answers[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(twins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    codes = [getattr(a, "status_code", a) for a in answers]
    assert codes == [201] * twins, [getattr(a, "content", a) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Ticket.objects.count() == 1
    assert sum(1 for a in answers if a.get("Idempotent-Replayed")) == twins - 1


def test_a_retried_check_report_and_evidence_upload_are_recorded_once(author: User) -> None:
    """Every POST that creates something honours the key: check results and evidence too."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from deployments.models import CheckResult, Environment, Evidence
    from tests.helpers.factories import TicketFactory

    ticket = TicketFactory(environment=Environment.objects.get(name="dev"), author=author)
    client = api_for(author)
    body = {"name": "fmt", "status": "passed", "summary": "ok"}
    first = client.post(
        f"/api/v1/tickets/{ticket.pk}/checks/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    again = client.post(
        f"/api/v1/tickets/{ticket.pk}/checks/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert CheckResult.objects.filter(ticket=ticket).count() == 1

    def upload() -> Any:
        return client.post(
            f"/api/v1/tickets/{ticket.pk}/evidence/",
            {"kind": "other", "file": SimpleUploadedFile("notes.txt", b"smoke ok\n")},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="e-1",
        )

    one, two = upload(), upload()
    assert one.status_code == two.status_code == 201, one.json()
    assert one.json()["id"] == two.json()["id"]
    assert Evidence.objects.filter(ticket=ticket).count() == 1


@pytest.mark.django_db
def test_a_retried_freeze_declaration_declares_one_freeze(operations: User) -> None:
    from deployments.models import Freeze

    body = {
        "starts_at": "2030-11-26T00:00:00-05:00",
        "ends_at": "2030-11-27T00:00:00-05:00",
        "reason": "Black Friday",
    }
    client = api_for(operations)
    url = "/api/v1/environments/prod/freezes/"
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    assert first.status_code == again.status_code == 201, first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert Freeze.objects.count() == 1


@pytest.mark.django_db
def test_every_post_that_creates_documents_the_key(author: User) -> None:
    """Each POST answering 201 takes Idempotency-Key (a new one fails here until it does;
    the tests above prove the replay of each)."""
    schema = api_for(author).get("/api/v1/schema/?format=json").json()
    creating = {
        path
        for path, methods in schema["paths"].items()
        if "201" in methods.get("post", {}).get("responses", {})
    }
    assert creating == {
        "/api/v1/tickets/",
        "/api/v1/tickets/{id}/checks/",
        "/api/v1/tickets/{id}/evidence/",
        "/api/v1/tickets/{id}/rollback/",
        "/api/v1/tickets/{id}/policy-overrides/",
        "/api/v1/environments/{name}/freezes/",
    }
    for path in creating:
        names = {p["name"] for p in schema["paths"][path]["post"].get("parameters", [])}
        assert "Idempotency-Key" in names, path
