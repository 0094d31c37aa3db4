"""Ticket list filters (?author=, ?commit=), bounded pagination counts, per-user throttling."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments import selectors
from deployments.api.support import pagination
from deployments.choices import TicketStatus
from deployments.models import Environment
from tests.helpers.api import api_for
from tests.helpers.factories import TicketFactory

pytestmark = pytest.mark.django_db

SHA_A = "a1b2c3d4e5" + "0" * 30
SHA_B = "a1b2c3d4ff" + "1" * 30


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.json()
    return {t["id"] for t in response.json()["results"]}


def test_filter_by_author_and_commit(author: User, developer: User) -> None:
    mine_a = TicketFactory(author=author, commit_sha=SHA_A)
    mine_b = TicketFactory(author=author, commit_sha=SHA_B, status=TicketStatus.COMPLETED)
    theirs = TicketFactory(author=developer, commit_sha=SHA_A)
    client = api_for(author)
    assert ids(client.get("/api/v1/tickets/?author=alice")) == {mine_a.pk, mine_b.pk}
    assert ids(client.get(f"/api/v1/tickets/?author={developer.username}")) == {theirs.pk}
    assert ids(client.get("/api/v1/tickets/?author=nobody")) == set()
    assert ids(client.get(f"/api/v1/tickets/?commit={SHA_A}")) == {mine_a.pk, theirs.pk}
    assert ids(client.get("/api/v1/tickets/?commit=a1b2c3d")) == {mine_a.pk, mine_b.pk, theirs.pk}
    assert ids(client.get("/api/v1/tickets/?commit=A1B2C3D4FF")) == {mine_b.pk}
    both = client.get("/api/v1/tickets/?author=alice&commit=a1b2c3d4e5&status=awaiting_approval")
    assert ids(both) == {mine_a.pk}
    staging = Environment.objects.get(name="staging")
    assert ids(client.get("/api/v1/tickets/?environment=staging&author=alice")) == set()
    assert staging  # the environment filter combines too


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("commit=a1b2c3", "commit"),  # 6: too short to mean one commit
        ("commit=xyz1234", "commit"),
        ("commit=" + "a" * 41, "commit"),
        ("author=al%20ice", "author"),
        ("author=" + "a" * 151, "author"),
        ("author=%00", "author"),
        ("status=done", "status"),
    ],
)
def test_bad_filter_values_are_400_naming_the_field(author: User, query: str, field: str) -> None:
    response = api_for(author).get(f"/api/v1/tickets/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert field in body and body["detail"].startswith(field)


def test_count_is_exact_below_the_bound_and_bounded_above(
    author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        TicketFactory(author=author)
    client = api_for(author)
    page = client.get("/api/v1/tickets/?limit=2").json()
    assert (page["count"], page["count_exact"], len(page["results"])) == (5, True, 2)
    assert page["next"] and page["previous"] is None
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 3)
    page = client.get("/api/v1/tickets/?limit=2").json()
    assert (page["count"], page["count_exact"]) == (3, False)
    assert page["next"]
    # Paging past the bound still works: the bound follows offset + limit.
    page = client.get("/api/v1/tickets/?limit=2&offset=4").json()
    assert (page["count"], page["count_exact"], len(page["results"])) == (5, True, 1)
    assert page["next"] is None


def test_throttled_per_user_with_retry_after(author: User, developer: User, settings: Any) -> None:
    settings.API_THROTTLE_RATE = "3/min"
    client = api_for(author)
    assert [client.get("/api/v1/tickets/").status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/tickets/")
    assert refused.status_code == 429
    assert "throttled" in refused.json()["detail"].lower()
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Counted per user: another person is not affected.
    assert api_for(developer).get("/api/v1/tickets/").status_code == 200
    settings.API_THROTTLE_RATE = "off"
    assert client.get("/api/v1/tickets/").status_code == 200


def test_the_schema_documents_429_and_the_filters(author: User) -> None:
    schema = api_for(author).get("/api/v1/schema/?format=json").json()
    listing = schema["paths"]["/api/v1/tickets/"]["get"]
    assert "429" in listing["responses"]
    assert "Retry-After" in listing["responses"]["429"]["headers"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"environment", "status", "author", "commit", "limit", "offset"} <= names
    create = schema["paths"]["/api/v1/tickets/"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert "422" in create["responses"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_cursor_pages_walk_the_list_newest_first_without_offsets(author: User) -> None:
    made = [TicketFactory(author=author).pk for _ in range(5)]
    client = api_for(author)
    first = client.get("/api/v1/tickets/?limit=2").json()
    seen = [t["id"] for t in first["results"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/api/v1/tickets/?limit=2&cursor={cursor}")
        assert page.status_code == 200, page.json()
        body = page.json()
        assert body["previous"] is None and body["count"] == 5
        assert (body["next"] is None) == (body["next_cursor"] is None)
        seen += [t["id"] for t in body["results"]]
        cursor = body["next_cursor"]
    # Every ticket once, in the list's own order (newest first: highest id on equal times).
    assert seen == sorted(made, reverse=True)


@pytest.mark.parametrize(
    "query",
    ["cursor=nonsense", "cursor=" + "A" * 201, "cursor=MjAyNnwx", "offset=2&cursor=x"],
)
def test_a_bad_cursor_is_400_naming_it(author: User, query: str) -> None:
    TicketFactory(author=author)
    response = api_for(author).get(f"/api/v1/tickets/?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor")


def test_deep_offsets_read_ids_first_and_say_how_far_the_list_goes(
    author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = sorted((TicketFactory(author=author).pk for _ in range(6)), reverse=True)
    client = api_for(author)
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 2)
    monkeypatch.setattr(selectors, "DEEP_OFFSET", 1)  # ids first from offset 2 on
    middle = client.get("/api/v1/tickets/?limit=2&offset=3").json()
    assert [t["id"] for t in middle["results"]] == made[3:5]
    # More rows follow: the count is a lower bound past the counted range.
    assert (middle["count"], middle["count_exact"]) == (5, False)
    last = client.get("/api/v1/tickets/?limit=2&offset=4").json()
    assert [t["id"] for t in last["results"]] == made[4:6]
    assert (last["count"], last["count_exact"], last["next"]) == (6, True, None)
    past = client.get("/api/v1/tickets/?limit=2&offset=9").json()
    assert (past["results"], past["count"], past["count_exact"]) == ([], 6, True)


def test_the_ticket_list_page_pages_newest_first(
    author: User, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.pages import tickets as views

    monkeypatch.setattr(views, "TICKETS_PER_PAGE", 2)
    monkeypatch.setattr(selectors, "DEEP_OFFSET", 1)
    made = sorted((TicketFactory(author=author).pk for _ in range(5)), reverse=True)
    client.force_login(author)

    def shown(query: str) -> list[int]:
        response = client.get(f"/tickets/?{query}")
        assert response.status_code == 200
        return [t.pk for t in response.context["tickets"]]

    assert shown("") == made[:2]
    assert shown("page=2") == made[2:4]
    assert shown("page=3") == made[4:]
    assert shown("page=9") == []
    # Not a page number: the first page, never an error.
    assert shown("page=x") == shown("page=-1") == shown("page=%EF%BC%92") == made[:2]
    body = client.get("/tickets/?page=2&status=awaiting_approval").content.decode()
    assert 'href="?status=awaiting_approval&amp;page=1"' in body
    assert 'href="?status=awaiting_approval&amp;page=3"' in body


def test_the_list_gives_exactly_what_the_ticket_serializer_gives(
    settings: Any, author: User
) -> None:
    """The list builds its rows without DRF's per-field machinery (api/fastrep.py): the
    same keys in the same order and the same values as TicketSerializer, on varied history
    (every status, risk, rollback, plans with and without summaries, deployments)."""
    import json
    from types import SimpleNamespace

    from django.core.management import call_command
    from django.utils import timezone
    from rest_framework.renderers import JSONRenderer

    from deployments.api.shapes.tickets import TicketSerializer

    settings.EMBEDDED = True
    call_command("seed_demo", "--tickets", "60", stdout=open("/dev/null", "w"))  # noqa: SIM115
    ops = User.objects.get(username="ops1")
    first = TicketFactory(author=ops, pull_request_url="https://example.com/pr/1")
    TicketFactory(author=ops, rollback_of=first, scheduled_for=timezone.now())
    body = api_for(ops).get("/api/v1/tickets/?limit=200").json()
    assert len(body["results"]) == 62
    tickets = {t.pk: t for t in selectors.ticket_list(ops)}
    selectors.attach_last_known_good(list(tickets.values()))
    # Other tickets a row names go through the viewer's visibility: the same viewer.
    context = {"request": SimpleNamespace(user=ops)}
    for row in body["results"]:
        expected = json.loads(
            JSONRenderer().render(TicketSerializer(tickets[row["id"]], context=context).data)
        )
        assert list(row) == list(expected)
        assert row == expected
