"""Server-rendered pages and the health endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import RunStatus, TicketStatus
from deployments.models import RunLogChunk, Ticket
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.django_db


def test_pages_require_sign_in() -> None:
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_sign_in_with_username_and_password(author: User) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"login": "alice", "password": "pw"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_sign_up_is_closed() -> None:
    response = Client().get("/accounts/signup/")
    assert b"Sign Up Closed" in response.content or response.status_code in (403, 404)


def test_ticket_list_shows_visible_tickets_only(author: User, outsider: User) -> None:
    TicketFactory(author=author, title="Scale the cache")
    assert b"Scale the cache" in signed_in(author).get("/tickets/").content
    assert b"Scale the cache" not in signed_in(outsider).get("/tickets/").content


def test_new_ticket_form_files_and_redirects(author: User, head_sha: str, monkeypatch: Any) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)
    response = signed_in(author).post(
        "/tickets/new/", {"title": "Bigger cache", "environment": "dev", "change_type": "normal"}
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.pk}/"
    assert ticket.commit_sha == head_sha and ticket.status == TicketStatus.PLANNING
    page = signed_in(author).get(response["Location"]).content.decode()
    assert "Bigger cache" in page and "Planning" in page and head_sha in page


def test_new_ticket_form_shows_errors_and_keeps_input(author: User, infra_repo: Path) -> None:
    response = signed_in(author).post(
        "/tickets/new/",
        {"title": "Keep me", "environment": "dev", "change_type": "normal", "commit_sha": "abc"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "commit_sha must be a full 40-character hex SHA" in page
    assert 'value="Keep me"' in page
    assert not Ticket.objects.exists()


def test_form_offers_only_environments_the_user_may_file(qa: User) -> None:
    page = signed_in(qa).get("/tickets/new/").content.decode()
    assert 'value="staging"' in page and 'value="dev"' not in page


def test_ticket_page_shows_plan_summary_and_log(author: User) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.AWAITING_APPROVAL)
    plan = RunFactory(
        ticket=ticket,
        plan_sha256="ab" * 32,
        log="Plan: 3 to add\n",
        summary={
            "add": 3,
            "change": 1,
            "destroy": 0,
            "resources": [{"address": "module.x.null_resource.y", "action": "create"}],
        },
    )
    ticket.current_plan = plan
    ticket.save()
    page = signed_in(author).get(f"/tickets/{ticket.pk}/").content.decode()
    assert "+3 to add" in page and "~1 to change" in page and "ab" * 32 in page
    assert "module.x.null_resource.y" in page and "Plan: 3 to add" in page
    assert 'http-equiv="refresh"' not in page  # nothing running: no auto refresh


def test_a_running_ticket_page_refreshes_without_javascript(author: User) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.PLANNING)
    RunFactory(ticket=ticket, status=RunStatus.RUNNING)
    page = signed_in(author).get(f"/tickets/{ticket.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    assert 'data-active="1"' in page


def test_live_log_feed_returns_only_new_text(author: User) -> None:
    run = RunFactory(ticket=TicketFactory(author=author), status=RunStatus.RUNNING)
    RunLogChunk.objects.create(run=run, seq=1, start=0, text="one\n")
    RunLogChunk.objects.create(run=run, seq=2, start=4, text="two\n")
    client = signed_in(author)
    first = client.get(f"/runs/{run.pk}/log/?offset=0").json()
    assert first["text"] == "one\ntwo\n" and first["offset"] == 8 and first["active"]
    assert client.get(f"/runs/{run.pk}/log/?offset=8").json()["text"] == ""
    # Once the run finishes its log is folded; the same offsets keep working.
    run.status, run.log = RunStatus.SUCCEEDED, "one\ntwo\nthree\n"
    run.save()
    RunLogChunk.objects.all().delete()
    last = client.get(f"/runs/{run.pk}/log/?offset=8").json()
    assert last["text"] == "three\n" and not last["active"]
    assert client.get(f"/runs/{run.pk}/log/?offset=x").status_code == 400


def test_live_log_of_a_hidden_run_is_404(author: User, outsider: User) -> None:
    run = RunFactory(ticket=TicketFactory(author=author))
    assert signed_in(outsider).get(f"/runs/{run.pk}/log/").status_code == 404


def test_environment_page_lists_rules(author: User) -> None:
    page = signed_in(author).get("/environments/").content.decode()
    assert "Tech Lead and DevOps Lead, two different people" in page
    assert "Tue/Thu 02:00\u201304:00 America/New_York" in page


def test_healthz_reports_each_part() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_healthz_is_503_naming_the_broken_part(monkeypatch: Any) -> None:
    from changecontrol.celery import app

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "connection_for_write", refuse)
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["broker"] == "failed"
    assert "broker down" not in response.content.decode()  # logged, never shown
    assert body["checks"]["database"] == "ok"
