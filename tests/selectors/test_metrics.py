"""DORA metrics (deployments.selectors.metrics, GET /api/v1/metrics/, /metrics/) against a history
whose every figure was computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.test import Client

from deployments.choices import ChangeType, Role, TicketStatus
from deployments.models import Approval, Deployment, Environment, Ticket
from deployments.selectors import metrics
from deployments.services.audit import audit_record
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

UTC = dt.UTC
# "Now" for every test: Friday 2026-03-20 12:00 UTC. With days=7 the period is the UTC
# days 03-14 .. 03-20, from 2026-03-14 00:00 UTC.
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _ticket(env: str, created: dt.datetime, **kw: Any) -> Ticket:
    kw.setdefault("status", TicketStatus.COMPLETED)
    with time_machine.travel(created, tick=False):
        return TicketFactory(environment=Environment.objects.get(name=env), **kw)


def _deploy(ticket: Ticket, finished: dt.datetime, **kw: Any) -> Deployment:
    return DeploymentFactory(ticket=ticket, finished_at=finished, **kw)


def _awaiting(ticket: Ticket, when: dt.datetime) -> None:
    """The audited transition into awaiting_approval, at ``when``."""
    with time_machine.travel(when, tick=False), transaction.atomic():
        audit_record(
            actor=None,
            action="ticket.transition",
            ticket=ticket,
            data={"from": "planning", "to": "awaiting_approval", "reason": ""},
        )


def _approve(
    ticket: Ticket, user: User, role: str, when: dt.datetime, voided: dt.datetime | None = None
) -> Approval:
    with time_machine.travel(when, tick=False):
        return Approval.objects.create(
            ticket=ticket,
            approver=user,
            role=role,
            held_roles=[role],
            plan_run=RunFactory(ticket=ticket),
            plan_sha256="a" * 64,
            voided_at=voided,
        )


@pytest.fixture
def history(tech_lead: User, devops_lead: User) -> dict[str, Any]:
    """Prod, all times UTC, March 2026 (ticket filed → deployment finished):

    outside the period (before 03-14): D0 succeeded 03-10, D00 failed 03-12
    T1 filed 03-15 08:00 → D1 succeeded 03-15 10:00                         lead 2 h
    T2 filed 03-15 12:00 → D2 FAILED    03-16 09:00
    T3 filed 03-16 06:00 → D3 succeeded 03-16 11:00                         lead 5 h
    T4 filed 03-17 00:00 → D4 succeeded 03-18 00:00, ROLLED BACK 03-18 03:00 lead 24 h
    T5 rollback of T4, filed 03-18 02:00 → D5 succeeded 03-18 03:00   (a rollback: no lead)
    T6 filed 03-19 10:00 → D6 succeeded 03-19 14:00, MONITORING FAILED 14:30 lead 4 h
    T7 filed 03-20 06:00, awaiting approval now.
    Dev: one failed deployment 03-17 12:00.
    """
    t0 = _ticket("prod", at(1, 0))
    _deploy(t0, at(10, 0))
    t00 = _ticket("prod", at(11, 0), status=TicketStatus.APPLY_FAILED)
    _deploy(t00, at(12, 0), outcome="failed")
    t1 = _ticket("prod", at(15, 8))
    _deploy(t1, at(15, 10))
    t2 = _ticket("prod", at(15, 12), status=TicketStatus.APPLY_FAILED)
    _deploy(t2, at(16, 9), outcome="failed")
    t3 = _ticket("prod", at(16, 6))
    _deploy(t3, at(16, 11))
    t4 = _ticket("prod", at(17, 0), status=TicketStatus.ROLLED_BACK)
    d4 = _deploy(t4, at(18, 0))
    t5 = _ticket("prod", at(18, 2), change_type=ChangeType.ROLLBACK, rollback_of=t4)
    d5 = _deploy(t5, at(18, 3))
    Deployment.objects.filter(pk=d4.pk).update(rolled_back_at=at(18, 3), rolled_back_by=d5)
    t6 = _ticket("prod", at(19, 10), status=TicketStatus.APPLY_FAILED)
    _deploy(t6, at(19, 14), monitoring_failed_at=at(19, 14, 30))
    _ticket("prod", at(20, 6), status=TicketStatus.AWAITING_APPROVAL)
    tdev = _ticket("dev", at(17, 11), status=TicketStatus.APPLY_FAILED)
    _deploy(tdev, at(17, 12), outcome="failed")

    # Approval waits (from the latest entry into awaiting_approval before each approval):
    # T3 entered 03-16 07:00: Tech Lead 08:00 (1 h), DevOps Lead 10:00 (3 h).
    _awaiting(t3, at(16, 7))
    _approve(t3, tech_lead, Role.TECH_LEAD, at(16, 8))
    _approve(t3, devops_lead, Role.DEVOPS_LEAD, at(16, 10))
    # T4 entered 03-17 01:00; Tech Lead approved 03:00 (2 h), voided by a re-plan that
    # re-entered awaiting_approval 05:00; then Tech Lead 06:00 (1 h), DevOps Lead 09:00 (4 h).
    _awaiting(t4, at(17, 1))
    _approve(t4, tech_lead, Role.TECH_LEAD, at(17, 3), voided=at(17, 4))
    _awaiting(t4, at(17, 5))
    _approve(t4, tech_lead, Role.TECH_LEAD, at(17, 6))
    _approve(t4, devops_lead, Role.DEVOPS_LEAD, at(17, 9))
    # Before the period: not counted.
    _awaiting(t0, at(5, 0))
    _approve(t0, tech_lead, Role.TECH_LEAD, at(5, 1))
    return {"t4": t4}


def _prod(payload: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in payload["environments"] if e["environment"] == "prod")


def _compute(days: int = 7) -> dict[str, Any]:
    envs = list(Environment.objects.all())
    return metrics.metrics_for(envs, days, NOW)


def test_figures_match_the_hand_computed_history(history: dict[str, Any]) -> None:
    payload = _compute(7)
    assert payload["period_start"] == "2026-03-14T00:00:00+00:00"
    prod = _prod(payload)
    # D1..D6 finished in the period: 6; succeeded D1, D3, D4, D5, D6: 5;
    # failures D2 (failed), D4 (rolled back), D6 (monitoring failed): 3.
    assert (prod["deployments"], prod["succeeded"], prod["failures"]) == (6, 5, 3)
    # Frequency: 5 succeeded / 7 days = 0.714... → 0.71 a day; 5 * 7 / 7 = 5 a week.
    assert prod["deployments_per_day"] == 0.71
    assert prod["deployments_per_week"] == 5.0
    # Change failure rate: 3 / 6.
    assert prod["change_failure_rate"] == 0.5
    # Lead times (D1 2 h, D3 5 h, D4 24 h, D6 4 h; D5 is a rollback) sorted:
    # 7200, 14400, 18000, 86400. Median (14400 + 18000) / 2 = 16200.
    # p90: position 0.9 * 3 = 2.7 → 18000 + 0.7 * (86400 - 18000) = 65880.
    assert prod["lead_time"] == {"count": 4, "median_seconds": 16200.0, "p90_seconds": 65880.0}
    # Restore: D2 (03-16 09:00) → D3 (11:00) 7200; D4 (03-18 00:00) → D5 (03:00) 10800;
    # D6 has no good deployment after it. Median (7200 + 10800) / 2 = 9000;
    # p90 7200 + 0.9 * 3600 = 10440.
    assert prod["time_to_restore"] == {
        "count": 2,
        "median_seconds": 9000.0,
        "p90_seconds": 10440.0,
    }
    assert prod["unrestored"] == 1
    # Approval waits. Tech Lead: 3600 (T3), 7200 (T4, voided), 3600 (T4) → sorted
    # 3600, 3600, 7200: median 3600, p90 position 1.8 → 3600 + 0.8 * 3600 = 6480.
    # DevOps Lead: 10800, 14400: median 12600, p90 10800 + 0.9 * 3600 = 14040.
    assert prod["approval_waits"] == [
        {
            "role": "tech_lead",
            "role_label": "Tech Lead",
            "approvals": 3,
            "median_seconds": 3600.0,
            "p90_seconds": 6480.0,
        },
        {
            "role": "devops_lead",
            "role_label": "DevOps Lead",
            "approvals": 2,
            "median_seconds": 12600.0,
            "p90_seconds": 14040.0,
        },
    ]
    # T7 waits since 03-20 06:00.
    assert prod["awaiting_approval_now"] == 1
    assert prod["oldest_waiting_since"] == "2026-03-20T06:00:00+00:00"
    # Daily (UTC days): 15th D1; 16th D2 (failed) + D3; 18th D4 (rolled back) + D5;
    # 19th D6 (monitoring failed).
    assert [
        (d["date"][-2:], d["deployments"], d["succeeded"], d["failures"]) for d in prod["daily"]
    ] == [
        ("14", 0, 0, 0),
        ("15", 1, 1, 0),
        ("16", 2, 1, 1),
        ("17", 0, 0, 0),
        ("18", 2, 2, 1),
        ("19", 1, 1, 1),
        ("20", 0, 0, 0),
    ]


def test_environments_are_kept_apart_and_periods_move(history: dict[str, Any]) -> None:
    payload = _compute(7)
    dev = next(e for e in payload["environments"] if e["environment"] == "dev")
    # Dev: the one failed deployment of 03-17; nothing succeeded, no approvals.
    assert (dev["deployments"], dev["failures"], dev["change_failure_rate"]) == (1, 1, 1.0)
    assert dev["lead_time"]["median_seconds"] is None
    assert dev["approval_waits"] == []
    # 30 days (from 02-19) take in D0 (succeeded 03-10) and D00 (failed 03-12), restored by
    # D1 (03-15 10:00): 3 d 10 h = 295200 s. Deployments 8, succeeded 6, failures 4.
    prod = _prod(_compute(30))
    assert (prod["deployments"], prod["succeeded"], prod["failures"]) == (8, 6, 4)
    # Lead: D0 filed 03-01 00:00, finished 03-10 00:00 = 777600; with the four above:
    # 7200, 14400, 18000, 86400, 777600 → median 18000.
    assert prod["lead_time"]["median_seconds"] == 18000.0
    # Restore: 7200, 10800, 295200 → median 10800.
    assert prod["time_to_restore"]["median_seconds"] == 10800.0
    assert prod["change_failure_rate"] == 0.5  # 4 / 8
    assert len(prod["daily"]) == 30


def test_approval_wait_falls_back_to_the_plan_finishing(
    db: None, tech_lead: User, devops_lead: User
) -> None:
    """No audited entry into awaiting_approval (older or seeded history): the wait starts
    when the approved plan finished, which is what moved the ticket there."""
    ticket = _ticket("staging", at(16, 0), status=TicketStatus.APPROVED)
    plan = RunFactory(ticket=ticket, finished_at=at(16, 0, 30))
    with time_machine.travel(at(16, 2), tick=False):
        Approval.objects.create(
            ticket=ticket,
            approver=tech_lead,
            role=Role.TECH_LEAD,
            held_roles=[Role.TECH_LEAD],
            plan_run=plan,
            plan_sha256="b" * 64,
        )
    staging = next(e for e in _compute(7)["environments"] if e["environment"] == "staging")
    # 03-16 00:30 -> 02:00: 1 h 30 min = 5400 s.
    assert staging["approval_waits"][0]["median_seconds"] == 5400.0
    assert staging["approval_waits"][0]["approvals"] == 1


def test_an_approval_records_when_its_ticket_started_waiting(
    db: None, author: User, lead: User
) -> None:
    """approval_grant writes waiting_since = the ticket's status_changed_at (its entry into
    awaiting_approval); the metrics read it without needing the audit trail."""
    from tests.helpers.tickets import approve, awaiting

    with time_machine.travel(at(16, 9), tick=False):
        ticket = awaiting("staging", author)  # status_changed_at 03-16 09:00
    with time_machine.travel(at(16, 11, 15), tick=False):
        assert approve(lead, ticket).status_code == 200
    approval = Approval.objects.get(ticket=ticket)
    assert approval.waiting_since == at(16, 9)
    staging = next(e for e in _compute(7)["environments"] if e["environment"] == "staging")
    # 09:00 -> 11:15: 2 h 15 min = 8100 s, as a Lead Developer.
    assert staging["approval_waits"] == [
        {
            "role": "lead_developer",
            "role_label": "Lead Developer",
            "approvals": 1,
            "median_seconds": 8100.0,
            "p90_seconds": 8100.0,
        }
    ]


def test_migration_dates_older_approvals_from_the_trail_else_the_plan(
    db: None, tech_lead: User, devops_lead: User
) -> None:
    from importlib import import_module

    from django.apps import apps

    backfill = import_module("deployments.migrations.0020_metrics").backfill
    audited = _ticket("prod", at(16, 0), status=TicketStatus.APPROVED)
    _awaiting(audited, at(16, 1))
    from_trail = _approve(audited, tech_lead, Role.TECH_LEAD, at(16, 3))
    unaudited = _ticket("prod", at(16, 0), status=TicketStatus.APPROVED)
    plan = RunFactory(ticket=unaudited, finished_at=at(16, 0, 40))
    with time_machine.travel(at(16, 5), tick=False):
        from_plan = Approval.objects.create(
            ticket=unaudited,
            approver=devops_lead,
            role=Role.DEVOPS_LEAD,
            held_roles=[Role.DEVOPS_LEAD],
            plan_run=plan,
            plan_sha256="c" * 64,
        )
    backfill(apps, None)
    from_trail.refresh_from_db()
    from_plan.refresh_from_db()
    assert from_trail.waiting_since == at(16, 1)
    assert from_plan.waiting_since == at(16, 0, 40)


def test_empty_history_gives_nulls_not_zeros(db: None) -> None:
    prod = _prod(_compute(7))
    assert prod["deployments"] == 0
    assert prod["deployments_per_day"] == 0.0
    assert prod["change_failure_rate"] is None
    assert prod["lead_time"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert prod["time_to_restore"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert prod["approval_waits"] == []
    assert prod["oldest_waiting_since"] is None
    assert len(prod["daily"]) == 7


def test_durations_read_as_people_say_them() -> None:
    from deployments.pages.charts import format_duration, format_rate

    assert format_duration(None) == "—"
    assert format_duration(45) == "45 s"
    assert format_duration(5400) == "1 h 30 min"
    assert format_duration(7200) == "2 h"
    assert format_duration(3 * 86400 + 3600) == "3 d 1 h"
    assert format_duration(-120) == "-2 min"
    assert format_rate(None) == "—"
    assert format_rate(0.3333) == "33.3 %"


def test_percentile_is_percentile_cont() -> None:
    assert metrics.percentile([], 0.5) is None
    assert metrics.percentile([5.0], 0.9) == 5.0
    # 1, 2, 3, 4: median 2.5; p90 position 2.7 → 3 + 0.7 * 1 = 3.7.
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(3.7)


# --- API ------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_api_gives_prod_only_to_those_who_see_prod(
    history: dict[str, Any], operations: User, author: User
) -> None:
    answer = api_for(operations).get("/api/v1/metrics/?days=7")
    assert answer.status_code == 200
    body = answer.json()
    assert [e["environment"] for e in body["environments"]] == ["dev", "staging", "prod"]
    assert _prod(body)["change_failure_rate"] == 0.5
    # A developer sees dev and staging; prod is not theirs to see, even by name.
    answer = api_for(author).get("/api/v1/metrics/?days=7")
    assert [e["environment"] for e in answer.json()["environments"]] == ["dev", "staging"]
    refused = api_for(author).get("/api/v1/metrics/?environment=prod")
    unknown = api_for(author).get("/api/v1/metrics/?environment=nope")
    assert refused.status_code == unknown.status_code == 400
    assert refused.json() == unknown.json()  # the same answer: nothing disclosed
    assert api_for(None).get("/api/v1/metrics/").status_code in (401, 403)


@time_machine.travel(NOW, tick=False)
def test_api_filters_one_environment(history: dict[str, Any], tech_lead: User) -> None:
    body = api_for(tech_lead).get("/api/v1/metrics/?environment=prod&days=7").json()
    assert [e["environment"] for e in body["environments"]] == ["prod"]
    assert body["days"] == 7
    assert body["environments"][0]["lead_time"]["median_seconds"] == 16200.0


def test_a_ci_key_reads_the_metrics_its_owner_may_see(db: None, author: User) -> None:
    """Through the real header: a CI-scoped key of a developer reads dev and staging."""
    from tests.helpers.keys import keyed, new_key

    answer = keyed(new_key(author, scope="ci")).get("/api/v1/metrics/?days=7")
    assert answer.status_code == 200
    assert [e["environment"] for e in answer.json()["environments"]] == ["dev", "staging"]


@pytest.mark.parametrize("days", ["0", "366", "abc", "-1", "1.5", "30days", " ", "9999", ""])
def test_api_refuses_bad_days(operations: User, days: str) -> None:
    answer = api_for(operations).get("/api/v1/metrics/", {"days": days})
    assert answer.status_code == 400
    assert "days" in answer.json()["detail"]


@pytest.mark.parametrize("days", ["1", "7", "30", "90", "365"])
def test_api_accepts_any_period_up_to_a_year(operations: User, days: str) -> None:
    answer = api_for(operations).get("/api/v1/metrics/", {"days": days})
    assert answer.status_code == 200
    assert len(answer.json()["environments"][0]["daily"]) == int(days)


def _grow(n: int, tech_lead: User) -> None:
    """``n`` prod deployments over the period, a third of them failed, each ticket with an
    audited wait and an approval."""
    for i in range(n):
        ticket = _ticket("prod", at(14, 0) + dt.timedelta(minutes=i))
        _awaiting(ticket, at(14, 1) + dt.timedelta(minutes=i))
        _approve(ticket, tech_lead, Role.TECH_LEAD, at(14, 2) + dt.timedelta(minutes=i))
        _deploy(
            ticket, at(15, 0) + dt.timedelta(minutes=i), outcome="failed" if i % 3 else "succeeded"
        )


def _queries(django_assert_max_num_queries: Any, call: Any, budget: int = 10) -> int:
    with django_assert_max_num_queries(budget) as captured:
        response = call()
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("where", ["api", "page"])
def test_query_count_does_not_grow_with_history(
    where: str, operations: User, tech_lead: User, django_assert_max_num_queries: Any
) -> None:
    client = Client()
    client.force_login(operations)

    def call() -> Any:
        with time_machine.travel(NOW, tick=False):
            if where == "api":
                # A fresh user object each time: roles are cached on it per request.
                fresh = User.objects.get(pk=operations.pk)
                return api_for(fresh).get("/api/v1/metrics/?days=30")
            return client.get("/metrics/?days=30")

    assert call().status_code == 200  # warm-up: the session learns the viewer's zone
    _grow(5, tech_lead)
    cache.clear()  # measured uncached
    budget = 10
    small = _queries(django_assert_max_num_queries, call, budget)
    _grow(45, tech_lead)
    cache.clear()
    large = _queries(django_assert_max_num_queries, call, budget)
    assert small == large
    body = call()
    if where == "api":
        assert _prod(body.json())["deployments"] == 50


# --- page -----------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_page_draws_the_charts_server_side(
    history: dict[str, Any], client: Client, operations: User
) -> None:
    client.force_login(operations)
    page = client.get("/metrics/?days=7")
    assert page.status_code == 200
    html = page.content.decode()
    # Prod is the default for those who see it; its figures, formatted.
    assert 'option value="prod" selected' in html
    assert "4 h 30 min" in html  # lead time median 16200 s
    assert "50.0 %" in html  # change failure rate
    assert "2 h 30 min" in html  # time to restore median 9000 s
    assert "1 not restored yet" in html
    # A bar per day (7) with 6 deployments: 4 days with bars, 3 of them with a failure.
    chart = html.split('id="chart-daily"')[1].split("</svg>")[0]
    assert chart.count('class="bar-ok"') == 7
    assert chart.count('class="bar-bad"') == 3
    assert "2026-03-16: 2 deployments, 1 failed" in chart
    waits = html.split('id="chart-waits"')[1].split("</svg>")[0]
    assert "Tech Lead" in waits and "DevOps Lead" in waits
    assert "3 h 30 min" in waits  # DevOps Lead median 12600 s
    # CSP: no inline script or style anywhere on the page.
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert 'href="/metrics/"' in html  # the nav link


@time_machine.travel(NOW, tick=False)
def test_page_for_a_developer_has_no_prod(client: Client, author: User) -> None:
    client.force_login(author)
    page = client.get("/metrics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="prod"' not in html
    assert 'option value="staging" selected' in html
    assert "No deployment of staging finished in the last 30 days" in html
    assert client.get("/metrics/?environment=prod").status_code == 400


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("days", ["3", "14", "365"])
def test_page_keeps_a_period_outside_the_menu(client: Client, operations: User, days: str) -> None:
    client.force_login(operations)
    html = client.get(f"/metrics/?days={days}").content.decode()
    assert f'<option value="{days}" selected>last {days} days</option>' in html
    assert html.count(" selected>last") == 1
    chart_days = html.count('class="bar-ok"')
    assert chart_days == 0  # no deployments: the chart gives way to the empty state
    assert f"in the last {days} days" in html


@pytest.mark.parametrize("query", ["days=0", "days=abc", "environment=nope"])
def test_page_shows_bad_parameters_as_a_form_error(
    client: Client, operations: User, query: str
) -> None:
    client.force_login(operations)
    page = client.get(f"/metrics/?{query}")
    assert page.status_code == 400
    assert 'id="metrics-error"' in page.content.decode()


def test_page_for_someone_who_sees_nothing(client: Client, outsider: User) -> None:
    client.force_login(outsider)
    page = client.get("/metrics/")
    assert page.status_code == 200
    assert "You see no environment" in page.content.decode()


def test_page_needs_sign_in(client: Client, db: None) -> None:
    assert client.get("/metrics/").status_code == 302


def test_answers_are_cached_for_the_ttl_and_no_longer(
    db: None, operations: User, settings: Any
) -> None:
    settings.METRICS_CACHE_SECONDS = 120
    ticket = _ticket("prod", at(19, 0))
    _deploy(ticket, at(19, 1))

    def deployments(when: dt.datetime) -> int:
        with time_machine.travel(when, tick=False):
            fresh = User.objects.get(pk=operations.pk)
            return _prod(api_for(fresh).get("/api/v1/metrics/?days=7").json())["deployments"]

    start = dt.datetime.fromtimestamp((int(NOW.timestamp()) // 120) * 120, tz=UTC)
    assert deployments(start) == 1
    _deploy(_ticket("prod", at(19, 2)), at(19, 3))
    assert deployments(start + dt.timedelta(seconds=119)) == 1  # the cached answer
    assert deployments(start + dt.timedelta(seconds=120)) == 2  # the TTL is over
    settings.METRICS_CACHE_SECONDS = 0
    _deploy(_ticket("prod", at(19, 4)), at(19, 5))
    assert deployments(start + dt.timedelta(seconds=121)) == 3  # no cache at all
