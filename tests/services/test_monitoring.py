"""The monitoring period after a prod deploy (issue 9): CloudWatch alarms through a moto
server, health checks against a local HTTP server, the post-deployment checklist and the
completion rules, with time-machine for the hour."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import boto3
import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from changecontrol.celery import app
from deployments import policy
from deployments.choices import RunKind, TicketStatus
from deployments.models import (
    AuditEvent,
    ChecklistItem,
    Deployment,
    Environment,
    MonitoringCheck,
    MonitoringPeriod,
    Ticket,
)
from deployments.selectors.monitoring import monitoring_for
from deployments.services import InputError
from deployments.services import monitoring as service
from deployments.services.environments import environment_validate
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

DEPLOYED = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)  # Thursday 02:30 in New York
SEVEN = [
    "All EC2 instances healthy",
    "Database connections stable",
    "Redis cache responding",
    "S3 uploads working",
    "Lambda processing queue",
    "No elevated error rates",
    "Response times within SLA",
]


@pytest.fixture(autouse=True)
def eager() -> Any:
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def prod(**config: Any) -> Environment:
    env = Environment.objects.get(name="prod")
    for name, value in config.items():
        setattr(env, name, value)
    env.save()
    return env


def deployed(author: User, at: dt.datetime = DEPLOYED) -> Ticket:
    """A prod ticket whose apply just succeeded, moved to monitoring as the worker does."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"),
        status=TicketStatus.MONITORING,
        author=author,
        deployed_at=at,
    )
    run = RunFactory(
        ticket=ticket, kind=RunKind.APPLY, plan=RunFactory(ticket=ticket), finished_at=at
    )
    DeploymentFactory(ticket=ticket, run=run, finished_at=at)
    with transaction.atomic():
        service.monitoring_start(ticket, run)
    return ticket


def sign_all(ticket: Ticket, operations: User) -> None:
    for item in ticket.checklist_items.filter(signed_at__isnull=True):
        response = api_for(operations).post(
            f"/api/v1/tickets/{ticket.pk}/checklist/{item.key}/", {"note": "looked"}, format="json"
        )
        assert response.status_code == 200, response.json()


# --- the period and the checklist ------------------------------------------------------


def test_a_prod_deploy_starts_the_hour_with_the_seven_items(author: User, tech_lead: User) -> None:
    ticket = deployed(author)
    period = MonitoringPeriod.objects.get(ticket=ticket)
    assert period.ends_at == DEPLOYED + dt.timedelta(minutes=60)
    assert [i.label for i in ticket.checklist_items.all()] == SEVEN
    assert AuditEvent.objects.filter(ticket=ticket, action="monitoring.start").exists()
    detail = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [i["label"] for i in detail["checklist"]] == SEVEN
    assert detail["checklist"][0] == {
        "key": "ec2-healthy",
        "label": "All EC2 instances healthy",
        "signed_by": None,
        "signed_at": None,
        "note": "",
        "auto": False,
        "evidence": {},
    }
    assert detail["monitoring"]["ends_at"] == period.ends_at.isoformat()


def test_environments_without_a_monitoring_period_get_none(author: User) -> None:
    staging = TicketFactory(
        environment=Environment.objects.get(name="staging"), status=TicketStatus.MONITORING
    )
    run = RunFactory(
        ticket=staging, kind=RunKind.APPLY, plan=RunFactory(ticket=staging), finished_at=DEPLOYED
    )
    with transaction.atomic():
        assert service.monitoring_start(staging, run) is None
    assert not ChecklistItem.objects.exists() and not MonitoringPeriod.objects.exists()


def test_checklist_api_answers_200_403_404_409(
    author: User, operations: User, tech_lead: User, outsider: User
) -> None:
    ticket = deployed(author)
    url = f"/api/v1/tickets/{ticket.pk}/checklist/redis-responding/"
    assert api_for(tech_lead).post(url, {"note": "x"}, format="json").status_code == 403
    assert api_for(outsider).post(url, {"note": "x"}, format="json").status_code == 404
    unknown = api_for(operations).post(
        f"/api/v1/tickets/{ticket.pk}/checklist/no-such-item/", {}, format="json"
    )
    assert unknown.status_code == 404 and "detail" in unknown.json()
    signed = api_for(operations).post(url, {"note": "PING answered in 1 ms"}, format="json")
    assert signed.status_code == 200, signed.json()
    assert signed.json()["signed_by"] == "opal" and signed.json()["auto"] is False
    assert signed.json()["note"] == "PING answered in 1 ms"
    again = api_for(operations).post(url, {"note": "again"}, format="json")
    assert again.status_code == 409 and "already signed off by opal" in again.json()["detail"]
    event = AuditEvent.objects.get(ticket=ticket, action="checklist.signoff")
    assert event.actor_name == "opal" and event.data["item"] == "redis-responding"
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.COMPLETED)
    closed = api_for(operations).post(
        f"/api/v1/tickets/{ticket.pk}/checklist/s3-uploads/", {"note": "x"}, format="json"
    )
    assert closed.status_code == 409 and "monitoring" in closed.json()["detail"]
    bad = api_for(operations).post(url, {"note": "a\x00b"}, format="json")
    assert bad.status_code in (400, 409)


def test_complete_is_refused_until_the_hour_passes_and_every_item_is_signed(
    author: User, operations: User, tech_lead: User
) -> None:
    with time_machine.travel(DEPLOYED, tick=False):
        ticket = deployed(author)
    url = f"/api/v1/tickets/{ticket.pk}/complete/"
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=59), tick=False):
        early = api_for(operations).post(url)
        assert early.status_code == 409
        detail = early.json()["detail"]
        assert "the monitoring period runs until 2026-11-26 08:30 UTC (1 min left)" in detail
        assert "7 checklist items are still open: All EC2 instances healthy" in detail
        sign_all(ticket, operations)
        assert "checklist" not in api_for(operations).post(url).json()["detail"]
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=61), tick=False):
        assert api_for(tech_lead).post(url).status_code == 403
        done = api_for(operations).post(url)
        assert done.status_code == 200, done.json()
        assert done.json()["status"] == "completed"
    ticket.refresh_from_db()
    assert ticket.completed_at == DEPLOYED + dt.timedelta(minutes=61)
    assert api_for(operations).post(url).status_code == 409


def test_an_open_item_names_itself_after_the_hour(author: User, operations: User) -> None:
    ticket = deployed(author)
    sign_all(ticket, operations)
    ticket.checklist_items.filter(key="lambda-queue").update(signed_at=None, signed_by=None)
    with time_machine.travel(DEPLOYED + dt.timedelta(hours=2), tick=False):
        refused = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/complete/")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "cannot complete yet: 1 checklist item is still open: Lambda processing queue"
    )


def test_staging_and_dev_tickets_are_not_completed_by_operations(operations: User) -> None:
    for name, says in (("staging", "QA signs off"), ("dev", "post-apply check")):
        ticket = TicketFactory(
            environment=Environment.objects.get(name=name), status=TicketStatus.MONITORING
        )
        refused = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/complete/")
        assert refused.status_code == 409 and says in refused.json()["detail"]


# --- CloudWatch through a moto server -----------------------------------------------------


def _alarm(cloudwatch: Any, name: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="5XXError",
        Namespace="AWS/ApiGateway",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_a_cloudwatch_alarm_mid_period_alerts_once_and_blocks_completion(
    moto_server: str,
    settings: Any,
    author: User,
    operations: User,
    tech_lead: User,
    devops_lead: User,
) -> None:
    settings.AWS_ENDPOINT_URL = moto_server
    settings.MONITORING_HEARTBEAT_SECONDS = 3600
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_server, region_name="us-east-1")
    _alarm(cloudwatch, "prod-api-5xx")
    _alarm(cloudwatch, "prod-db-connections")
    _alarm(cloudwatch, "staging-api-5xx")
    prod(alarm_name_prefix="prod-", alarm_names=["prod-api-5xx"])
    with time_machine.travel(DEPLOYED, tick=True):
        ticket = deployed(author)
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=5), tick=True):
        assert service.monitoring_poll() == 1
    first = list(MonitoringCheck.objects.filter(ticket=ticket).order_by("target"))
    assert [(c.source, c.target, c.ok) for c in first] == [
        ("cloudwatch", "prod-api-5xx", True),
        ("cloudwatch", "prod-db-connections", True),
    ]
    assert first[0].detail.startswith("OK: ")

    cloudwatch.set_alarm_state(
        AlarmName="prod-db-connections",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [912.0] > 800",
    )
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=10), tick=True):
        service.monitoring_poll()
        service.monitoring_poll()  # still in ALARM: no second notification, no new row
    failing = MonitoringCheck.objects.get(ticket=ticket, ok=False)
    assert failing.target == "prod-db-connections"
    assert failing.detail == "ALARM: Threshold Crossed: 1 datapoint [912.0] > 800"
    assert MonitoringCheck.objects.filter(ticket=ticket).count() == 3
    period = MonitoringPeriod.objects.get(ticket=ticket)
    assert period.alarm_at is not None and "prod-db-connections" in period.alarm_reason
    told = Notification.objects.filter(event="monitoring.alarm")
    assert sorted({n.recipient.get_username() for n in told}) == ["alice", "opal", "otto", "tess"]
    # Told once (one row per person and channel) though the alarm was seen by two polls.
    assert told.count() == 4 * len({n.channel for n in told})
    assert all(n.url.endswith(f"/tickets/{ticket.pk}/#rollback") for n in told)
    deployment = Deployment.objects.get(ticket=ticket)
    assert deployment.monitoring_failed_at is not None and not deployment.is_good
    assert AuditEvent.objects.filter(ticket=ticket, action="monitoring.alarm").count() == 1

    sign_all(ticket, operations)
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=61), tick=False):
        refused = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/complete/")
        assert refused.status_code == 409
        assert "an alarm fired at 2026-11-26 07:40 UTC" in refused.json()["detail"]
        page = Client()
        page.force_login(operations)
        html = page.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="alarm-banner"' in html and 'href="#rollback"' in html
        assert "Roll back now" in html and 'id="complete-button" disabled' in html
        # Still failing: acknowledging is refused; rollback is the way.
        still = api_for(operations).post(
            f"/api/v1/tickets/{ticket.pk}/monitoring/acknowledge/", {"note": "x"}, format="json"
        )
        assert (
            still.status_code == 409
            and "still failing: prod-db-connections" in still.json()["detail"]
        )


def test_an_alarm_that_recovered_is_acknowledged_with_a_note_then_completion(
    moto_server: str, settings: Any, author: User, operations: User, tech_lead: User
) -> None:
    settings.AWS_ENDPOINT_URL = moto_server
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_server, region_name="us-east-1")
    _alarm(cloudwatch, "prod-api-5xx")
    prod(alarm_names=["prod-api-5xx"])
    ticket = deployed(author, at=dt.datetime.now(dt.UTC))
    cloudwatch.set_alarm_state(AlarmName="prod-api-5xx", StateValue="ALARM", StateReason="5xx")
    service.monitoring_poll()
    cloudwatch.set_alarm_state(AlarmName="prod-api-5xx", StateValue="OK", StateReason="fine")
    service.monitoring_poll()
    service.monitoring_poll()
    recovered = Notification.objects.filter(event="monitoring.recovered")
    assert {n.recipient.get_username() for n in recovered} == {"alice", "opal", "tess"}
    assert recovered.count() == 3 * len({n.channel for n in recovered})  # told once
    assert MonitoringPeriod.objects.get(ticket=ticket).recovered_at is not None
    page = Client()
    page.force_login(operations)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="alarm-banner"' in html and "Every probe passes again." in html
    assert 'id="acknowledge-form"' in html
    url = f"/api/v1/tickets/{ticket.pk}/monitoring/acknowledge/"
    assert api_for(tech_lead).post(url, {"note": "blip"}, format="json").status_code == 403
    assert api_for(operations).post(url, {"note": ""}, format="json").status_code == 400
    acked = api_for(operations).post(
        url, {"note": "deploy-time blip, 5xx back to 0"}, format="json"
    )
    assert acked.status_code == 200, acked.json()
    assert acked.json()["monitoring"]["state"] == "acknowledged"
    assert acked.json()["monitoring"]["alarm"]["acknowledged_by"] == "opal"
    assert AuditEvent.objects.filter(ticket=ticket, action="monitoring.acknowledge").exists()
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="alarm-banner"' not in html and 'id="alarm-acknowledged"' in html
    assert "deploy-time blip, 5xx back to 0" in html
    sign_all(ticket, operations)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61), tick=False):
        done = api_for(operations).post(f"/api/v1/tickets/{ticket.pk}/complete/")
    assert done.status_code == 200, done.json()


def test_cloudwatch_errors_are_a_failing_probe_never_a_crash(
    settings: Any, author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9 of loopback: botocore cannot connect.
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    prod(alarm_names=["prod-api-5xx"])
    ticket = deployed(author, at=dt.datetime.now(dt.UTC))
    assert service.monitoring_poll() == 1
    check = MonitoringCheck.objects.get(ticket=ticket)
    assert not check.ok and check.detail.startswith("CloudWatch error:")
    assert MonitoringPeriod.objects.get(ticket=ticket).alarm_at is not None


# --- health checks against a local HTTP server ----------------------------------------------


def test_a_health_check_that_starts_failing_raises_the_alarm_and_passing_signs_its_item(
    httpserver: HTTPServer, author: User, operations: User
) -> None:
    health = httpserver.url_for("/health")
    checklist = Environment.objects.get(name="prod").checklist
    checklist[-1]["auto"] = health  # "Response times within SLA"
    prod(health_checks=[{"url": health, "max_latency_ms": 5000}], checklist=checklist)
    httpserver.expect_request("/health").respond_with_data("ok")
    ticket = deployed(author, at=dt.datetime.now(dt.UTC))
    service.monitoring_poll()
    item = ticket.checklist_items.get(key="response-times")
    assert item.auto and item.signer_name == "automated check"
    assert item.note.startswith(f"automated check: GET {health} → HTTP 200 in ")
    assert item.evidence["detail"].startswith("HTTP 200 in ")
    assert MonitoringPeriod.objects.get(ticket=ticket).alarm_at is None

    httpserver.clear()
    httpserver.expect_request("/health").respond_with_data("down", status=500)
    service.monitoring_poll()
    failing = MonitoringCheck.objects.filter(ticket=ticket).first()
    assert failing is not None and not failing.ok and failing.detail.startswith("HTTP 500 in ")
    assert MonitoringPeriod.objects.get(ticket=ticket).alarm_at is not None
    assert Notification.objects.filter(event="monitoring.alarm").exists()
    assert Deployment.objects.get(ticket=ticket).monitoring_failed_at is not None
    detail = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["monitoring"]["state"] == "alarm"
    assert detail["monitoring"]["failing"] == [health]
    assert [c["ok"] for c in detail["monitoring"]["checks"]] == [False, True]


def test_a_slow_health_check_fails_on_latency(httpserver: HTTPServer, author: User) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.3)
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    slow_url = httpserver.url_for("/slow")
    prod(health_checks=[{"url": slow_url, "max_latency_ms": 100}])
    ticket = deployed(author, at=dt.datetime.now(dt.UTC))
    service.monitoring_poll()
    check = MonitoringCheck.objects.get(ticket=ticket)
    assert not check.ok and check.detail.endswith("over the 100 ms limit")
    assert check.detail.startswith("HTTP 200 in ")


def test_health_check_urls_from_the_environment_variable_are_merged(
    httpserver: HTTPServer, settings: Any, author: User
) -> None:
    httpserver.expect_request("/up").respond_with_data("ok")
    settings.HEALTH_CHECK_URLS = {"prod": [httpserver.url_for("/up")], "dev": ["http://x/"]}
    ticket = deployed(author, at=dt.datetime.now(dt.UTC))
    service.monitoring_poll()
    assert list(MonitoringCheck.objects.filter(ticket=ticket).values_list("target", "ok")) == [
        (httpserver.url_for("/up"), True)
    ]


def test_unchanged_results_are_written_again_only_as_a_heartbeat(
    httpserver: HTTPServer, settings: Any, author: User
) -> None:
    settings.MONITORING_HEARTBEAT_SECONDS = 300
    httpserver.expect_request("/up").respond_with_data("ok")
    prod(health_checks=[httpserver.url_for("/up")])
    with time_machine.travel(DEPLOYED, tick=False):
        ticket = deployed(author)
    for minute in (1, 2, 3, 7):  # the heartbeat is due again at minute 6
        with time_machine.travel(DEPLOYED + dt.timedelta(minutes=minute), tick=False):
            service.monitoring_poll()
    times = (
        MonitoringCheck.objects.filter(ticket=ticket).order_by("at").values_list("at", flat=True)
    )
    assert [t - DEPLOYED for t in times] == [dt.timedelta(minutes=1), dt.timedelta(minutes=7)]


def test_the_beat_stops_polling_after_the_period(httpserver: HTTPServer, author: User) -> None:
    httpserver.expect_request("/up").respond_with_data("ok")
    prod(health_checks=[httpserver.url_for("/up")])
    with time_machine.travel(DEPLOYED, tick=False):
        ticket = deployed(author)
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=60, seconds=1), tick=False):
        assert service.monitoring_poll() == 0
    assert not MonitoringCheck.objects.filter(ticket=ticket).exists()
    assert len(httpserver.log) == 0
    from django.conf import settings as django_settings

    from deployments import tasks

    beat = django_settings.CELERY_BEAT_SCHEDULE["monitoring-poll"]
    assert beat["task"] == tasks.monitoring_poll.name
    assert beat["schedule"] == float(django_settings.MONITORING_POLL_SECONDS)


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("health_checks", ["ftp://x"], "must start with http:// or https://"),
        ("health_checks", [{"url": "https://x", "max_latency_ms": 0}], "max_latency_ms"),
        ("alarm_names", "prod-5xx", "alarm_names must be a list"),
        ("checklist", [{"key": "A B", "label": "x"}], "a checklist key"),
        ("checklist", [{"key": "a", "label": "x", "auto": "https://unknown/"}], "auto must be"),
        ("checklist", [{"key": "a", "label": "x"}, {"key": "a", "label": "y"}], "appears twice"),
    ],
)
def test_monitoring_settings_are_validated(field: str, value: Any, says: str) -> None:
    env = Environment.objects.get(name="prod")
    setattr(env, field, value)
    with pytest.raises(InputError) as refused:
        environment_validate(env)
    assert refused.value.field == field and says in refused.value.message


def test_completion_rules_are_pure() -> None:
    ticket = Ticket(status=TicketStatus.MONITORING, environment=Environment(name="prod"))
    ends = DEPLOYED + dt.timedelta(hours=1)
    alarm = policy.Alarm(at=DEPLOYED, reason="5xx", acknowledged=False)
    items = [policy.OpenItem("A", True), policy.OpenItem("B", False)]
    with pytest.raises(policy.PolicyError) as refused:
        policy.check_may_complete(
            ticket, items, [alarm], ends - dt.timedelta(seconds=20), ends_at=ends
        )
    assert refused.value.message == (
        "cannot complete yet: the monitoring period runs until 2026-11-26 08:30 UTC (less than "
        "a minute left); 1 checklist item is still open: B; an alarm fired at 2026-11-26 07:30 "
        "UTC (5xx): roll back, or once every probe passes again operations acknowledges the "
        "alarm with a note"
    )
    acknowledged = policy.Alarm(at=DEPLOYED, reason="5xx", acknowledged=True)
    policy.check_may_complete(
        ticket, [policy.OpenItem("A", True)], [acknowledged], ends, ends_at=ends
    )


# --- the page and the query budget ----------------------------------------------------------


def _with_checks(ticket: Ticket, count: int) -> None:
    period = MonitoringPeriod.objects.get(ticket=ticket)
    MonitoringCheck.objects.bulk_create(
        MonitoringCheck(
            ticket=ticket,
            period=period,
            source="http",
            target=f"https://probe-{n % 5}.example/health",
            ok=n % 3 != 0,
            detail=f"HTTP 200 in {n} ms",
            at=DEPLOYED + dt.timedelta(seconds=n),
        )
        for n in range(count)
    )


def test_monitoring_reads_stay_within_budget_whatever_the_history(
    author: User, operations: User, django_assert_max_num_queries: Any
) -> None:
    client = Client()
    client.force_login(operations)
    api = api_for(operations)
    counts = {}
    for rows in (3, 60):
        ticket = deployed(author)
        _with_checks(ticket, rows)
        with django_assert_max_num_queries(3):
            view = monitoring_for(ticket, DEPLOYED)
        assert len(view.checks) == min(rows, 20)
        client.get(f"/tickets/{ticket.pk}/")  # warm: sessions, content types
        api.get(f"/api/v1/tickets/{ticket.pk}/")
        with CaptureQueriesContext(connection) as page:
            html = client.get(f"/tickets/{ticket.pk}/").content.decode()
        with CaptureQueriesContext(connection) as detail:
            body = api.get(f"/api/v1/tickets/{ticket.pk}/").json()
        assert html.count('<tr class="check-') == min(rows, 20)
        assert len(body["monitoring"]["checks"]) == min(rows, 20)
        counts[rows] = (len(page), len(detail))
    assert counts[3] == counts[60]


def test_the_page_shows_countdown_history_checklist_and_sign_off(
    author: User, operations: User, tech_lead: User
) -> None:
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=12, seconds=30), tick=False):
        ticket = deployed(author, at=DEPLOYED)
        client = Client()
        client.force_login(operations)
        html = client.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="monitoring-countdown" data-remaining="2850">47:30<' in html
        assert "monitoring.js" in html and "<script>" not in html
        assert 'id="checklist-ec2-healthy-form"' in html
        assert 'id="complete-button" disabled' in html
        signed = client.post(
            f"/tickets/{ticket.pk}/checklist/ec2-healthy/sign/", {"note": "12/12 healthy"}
        )
        assert signed.status_code == 302 and signed["Location"].endswith("#monitoring")
        html = client.get(f"/tickets/{ticket.pk}/").content.decode()
        assert 'id="checklist-ec2-healthy-form"' not in html and "12/12 healthy" in html
        lead = Client()
        lead.force_login(tech_lead)
        assert (
            'id="checklist-s3-uploads-form"'
            not in lead.get(f"/tickets/{ticket.pk}/").content.decode()
        )
        refused = lead.post(f"/tickets/{ticket.pk}/checklist/s3-uploads/sign/", {"note": "x"})
        assert refused.status_code == 302
        assert not ticket.checklist_items.get(key="s3-uploads").signed


def test_a_checklist_whose_auto_url_was_removed_still_creates_every_item(
    settings: Any, author: User
) -> None:
    settings.HEALTH_CHECK_URLS = {"prod": ["https://app.example.com/healthz"]}
    checklist = Environment.objects.get(name="prod").checklist
    checklist[-1]["auto"] = "https://app.example.com/healthz"
    prod(checklist=checklist)  # valid while the variable names the URL
    settings.HEALTH_CHECK_URLS = {}
    ticket = deployed(author)
    assert [i.label for i in ticket.checklist_items.all()] == SEVEN
    assert not ticket.checklist_items.exclude(auto_check="").exists()


def test_sign_off_and_complete_cost_the_same_whatever_the_history(
    author: User, operations: User
) -> None:
    api = api_for(operations)
    counts = {}
    for rows in (3, 60):
        ticket = deployed(author)
        _with_checks(ticket, rows)
        api.get(f"/api/v1/tickets/{ticket.pk}/")  # warm: token, groups
        with CaptureQueriesContext(connection) as first:
            signed = api.post(
                f"/api/v1/tickets/{ticket.pk}/checklist/ec2-healthy/", {"note": "ok"}, format="json"
            )
        assert signed.status_code == 200
        statements = [q["sql"] for q in first.captured_queries if "SAVEPOINT" not in q["sql"]]
        assert len(statements) <= 10, statements
        with CaptureQueriesContext(connection) as complete:
            refused = api.post(f"/api/v1/tickets/{ticket.pk}/complete/")
        assert refused.status_code == 409
        with CaptureQueriesContext(connection) as sign:
            api.post(
                f"/api/v1/tickets/{ticket.pk}/checklist/s3-uploads/", {"note": "ok"}, format="json"
            )
        counts[rows] = (len(sign), len(complete))
    assert counts[3] == counts[60]
