"""Query budgets: every list and detail page and API endpoint makes a number of queries that
does not grow with the rows it shows, and stays within BUDGET (an N+1 fails here).

Each case is measured twice on realistic history (deployments/seeding.py: runs, approvals,
deployments, follow-ups, audit events): lists with 6 and then 30 tickets, details on a
ticket with 2 runs and then on one with 50 (plus checks and evidence rows at both sizes).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import CheckResult, Evidence, FollowUp, TerraformRun, Ticket
from deployments.models.apikeys import ApiKey
from deployments.services import seeding
from deployments.services.apikeys import api_key_create
from tests.helpers.api import api_for

pytestmark = pytest.mark.django_db

BUDGET = 10
# The ticket page and its API detail show about a dozen independent sections (runs,
# approvals, rejections, follow-ups, evidence, checks, audit, freezes, last known good,
# stale plan, schedule conflict, and since issue 9 the rollback choice (own deployment,
# open rollback, newer deployment, target), monitoring period and checklist): one query
# each, whatever their length. Over the 10: see docs/performance.md.
DETAIL_BUDGET = 24


class History:
    """The demo accounts and seeded tickets, grown on demand."""

    def __init__(self) -> None:
        self.users = {u.username: u for u in User.objects.all()}

    def grow_to(self, tickets: int) -> None:
        seeding.seed_history(tickets, self.users, random.Random(tickets))
        ops = self.users["ops1"]
        for n in range(ApiKey.objects.filter(user=ops).count(), tickets):
            api_key_create(actor=ops, user=ops, name=f"key {n}")


@pytest.fixture
def history(settings: Any) -> History:
    settings.EMBEDDED = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 - closed on exit
    return History()


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return len(ctx.captured_queries)


def _page_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    client.get("/healthz")  # the session's first write is not the page's
    return client


def _clients(history: History, who: str) -> dict[str, Any]:
    user = history.users[who]
    return {"page": _page_client(user), "api": api_for(user)}


LIST_URLS: list[tuple[str, str]] = [
    ("page", "/"),
    ("page", "/tickets/"),
    ("page", "/tickets/?environment=dev&status=completed"),
    ("page", "/tickets/?page=2"),
    ("page", "/environments/dev/history/"),
    ("page", "/metrics/"),
    ("page", "/environments/"),
    ("page", "/calendar/"),
    ("page", "/settings/"),
    ("page", "/settings/tokens/"),
    ("page", "/tickets/new/"),
    ("api", "/api/v1/tickets/"),
    ("api", "/api/v1/tickets/?environment=dev&status=completed"),
    ("api", "/api/v1/tickets/?limit=200"),
    ("api", "/api/v1/tickets/?author=dev1"),
    ("api", "/api/v1/environments/"),
    ("api", "/api/v1/environments/prod/"),
    ("api", "/api/v1/deployments/"),
    ("api", "/api/v1/me/queue/"),
    ("api", "/api/v1/metrics/"),
]


@pytest.mark.parametrize("who", ["ops1", "dev1"])
@pytest.mark.parametrize(("kind", "url"), LIST_URLS)
def test_list_queries_do_not_grow_with_rows(
    history: History, who: str, kind: str, url: str, django_assert_max_num_queries: Any
) -> None:
    client = _clients(history, who)[kind]
    history.grow_to(6)
    with django_assert_max_num_queries(BUDGET):
        few = _queries(client, url)
    history.grow_to(30)
    with django_assert_max_num_queries(few):
        _queries(client, url)


def _ticket_with_runs(runs: int) -> Ticket:
    ticket = next(
        t for t in Ticket.objects.filter(source="seed").order_by("-pk") if t.runs.count() == runs
    )
    return ticket


def _decorate(ticket: Ticket, rows: int) -> None:
    """Per-ticket rows the detail shows beside runs: CI checks, evidence, follow-ups."""
    qa = User.objects.get(username="qa1")
    for n in range(rows):
        CheckResult.objects.create(
            ticket=ticket, name=f"check-{n}", status="passed", reported_by=ticket.author
        )
        Evidence.objects.create(
            ticket=ticket,
            kind="smoke_tests",
            token=uuid.uuid4().hex,
            file=f"evidence/ticket-{ticket.pk}/{n}.txt",
            filename=f"smoke-{n}.txt",
            size=10,
            sha256="0" * 64,
            content_type="text/plain",
            uploaded_by=qa,
            passed=True,
            signed_off_by=qa,
            signed_off_at=timezone.now(),
        )
        FollowUp.objects.create(
            ticket=ticket,
            kind="post_mortem",
            due_at=timezone.now() + dt.timedelta(days=n - 3),
            deployment_run=ticket.runs.order_by("-pk")[n % ticket.runs.count()],
        )


DETAIL_URLS: list[tuple[str, Callable[[Ticket], str]]] = [
    ("page", lambda t: f"/tickets/{t.pk}/"),
    ("api", lambda t: f"/api/v1/tickets/{t.pk}/"),
    ("page", lambda t: f"/runs/{_last_run(t).pk}/log/"),
    ("api", lambda t: f"/api/v1/runs/{_last_run(t).pk}/"),
]


def _last_run(ticket: Ticket) -> TerraformRun:
    run = ticket.runs.order_by("-pk").first()
    assert run is not None
    return run


@pytest.mark.parametrize("who", ["ops1", "techlead1"])
@pytest.mark.parametrize(("kind", "url"), DETAIL_URLS, ids=["page", "api", "log", "run-api"])
def test_detail_queries_do_not_grow_with_rows(
    history: History,
    who: str,
    kind: str,
    url: Callable[[Ticket], str],
    django_assert_max_num_queries: Any,
) -> None:
    # Every 5,000th seeded ticket was re-planned to 50 runs: the first one is.
    history.grow_to(12)
    client = _clients(history, who)[kind]
    small, heavy = _ticket_with_runs(2), _ticket_with_runs(seeding.HEAVY_RUNS)
    _decorate(small, 1)
    _decorate(heavy, 20)
    small_url, heavy_url = url(small), url(heavy)
    with django_assert_max_num_queries(DETAIL_BUDGET):
        few = _queries(client, small_url)
    with django_assert_max_num_queries(few):
        _queries(client, heavy_url)


def test_every_response_says_how_long_the_server_took(client: Client) -> None:
    """Server-Timing (lib.middleware.ServerTiming), read by benchmarks/pages_bench.py."""
    for path in ("/healthz", "/accounts/login/", "/api/v1/tickets/"):
        header = client.get(path)["Server-Timing"]
        name, _, duration = header.partition(";dur=")
        assert name == "app" and float(duration) >= 0, header
