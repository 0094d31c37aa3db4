"""Issue 11 notifications: every ticket event is told by the services, in the change's
transaction, to the right people (email, with their preferences) and to the team (Slack
through a real HTTP receiver, SNS through a moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import transaction
from django.test import Client
from pytest_httpserver import HTTPServer

from changecontrol.celery import app
from deployments import services
from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, TerraformRun, Ticket, UserPreference
from deployments.services.runs import start as runs
from notifications import service
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.users import persona

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery runs the delivery task in-process (retries included)."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


@pytest.fixture
def plan_storage(settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Runs are queued but never sent to a Terraform worker."""
    sent: list[int] = []
    monkeypatch.setattr(runs, "dispatch_on_commit", sent.append)
    return sent


def _ticket(env: str, author: User, status: str, **extra: Any) -> Ticket:
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env), author=author, status=status, **extra
    )
    plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"p%d" % ticket.pk).hexdigest())
    ticket.current_plan = plan
    ticket.save()
    return ticket


def _finish_plan(ticket: Ticket) -> None:
    """The worker records a successful plan: the ticket moves on (services.run_finish)."""
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.PLANNING)
    run = RunFactory(ticket=ticket, status=RunStatus.RUNNING, plan_sha256="")
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        stale=False,
        terraform_version="1.11.4",
        plan=tf.PlanResult(
            exit_code=0,
            plan_bytes=b"plan",
            plan_sha256="f" * 64,
            summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
        ),
    )


def _deliver_queued() -> None:
    """What the Celery task does for each queued row (one attempt each)."""
    for pk in Notification.objects.filter(status="queued").values_list("pk", flat=True):
        service.deliver_once(pk)


# --- approval.needed: the approvers, never the author ---------------------------------


def test_approval_needed_tells_the_roles_that_may_approve_but_not_the_author(
    httpserver: HTTPServer,
    settings: Any,
    lead: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    plan_storage: None,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    other_lead = persona("leo", "lead_developer")
    ticket = _ticket("staging", lead, TicketStatus.PLANNING)  # rule: 1 lead dev or tech lead
    with django_capture_on_commit_callbacks(execute=True):
        _finish_plan(ticket)
    httpserver.check_assertions()  # the team channel got the approval request, once
    slack = json.loads(httpserver.log[0][0].data)
    assert slack["text"].startswith(f"Approval needed: staging #{ticket.pk}")
    assert {"type": "mrkdwn", "text": "*What*\nneeds approval"} in slack["blocks"][1]["fields"]
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_APPROVAL
    rows = Notification.objects.filter(event="approval.needed", channel="email")
    assert sorted((r.recipient.username, r.via_role) for r in rows) == [
        ("leo", "lead_developer"),
        ("tess", "tech_lead"),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["leo@example.com", "tess@example.com"]
    message = mail.outbox[0]
    assert message.subject == f"Approval needed: staging #{ticket.pk} {ticket.title}"
    assert f"http://127.0.0.1:8000/tickets/{ticket.pk}/" in message.body
    assert "1 approval from a Lead Developer or Tech Lead" in message.body
    assert other_lead.pk and not Notification.objects.filter(recipient=lead).exists()


def test_an_emergency_is_not_announced_twice(
    author: User, tech_lead: User, devops_lead: User, plan_storage: None
) -> None:
    ticket = _ticket("prod", author, TicketStatus.PLANNING, change_type="emergency")
    _finish_plan(ticket)
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_APPROVAL
    assert not Notification.objects.filter(event="approval.needed").exists()


def test_approved_and_rejected_tell_the_author(
    author: User, lead: User, tech_lead: User, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    approved = _ticket("staging", author, TicketStatus.AWAITING_APPROVAL)
    rejected = _ticket("staging", author, TicketStatus.AWAITING_APPROVAL)
    with django_capture_on_commit_callbacks(execute=True):
        services.approval_grant(
            ticket_id=approved.pk, actor=lead, plan_sha256=approved.current_plan.plan_sha256
        )
        services.ticket_reject(ticket_id=rejected.pk, actor=tech_lead, reason="wrong bucket")
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["alice@example.com"], f"Approved: staging #{approved.pk} {approved.title}"),
        (["alice@example.com"], f"Rejected: staging #{rejected.pk} {rejected.title}"),
    ]
    assert "approved by lena (Lead Developer)" in mail.outbox[0].body
    assert "Reason: wrong bucket" in mail.outbox[1].body


# --- Slack: a real HTTP receiver ------------------------------------------------------------


def test_slack_receives_the_event_with_link_environment_who_what_and_commit(
    httpserver: HTTPServer,
    settings: Any,
    author: User,
    tech_lead: User,
    devops_lead: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/services/T000/B000/XXX")
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    httpserver.expect_oneshot_request(
        "/services/T000/B000/XXX", method="POST", headers={"Content-Type": "application/json"}
    ).respond_with_data("ok")
    ticket = _ticket("prod", author, TicketStatus.AWAITING_APPROVAL, title="Open <port> 22")
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_reject(ticket_id=ticket.pk, actor=tech_lead, reason="too <wide>")
    httpserver.check_assertions()
    (request, _response) = httpserver.log[0]
    payload = json.loads(request.data)
    link = f"https://portal.example.com/tickets/{ticket.pk}/"
    # The fallback text (what notifications and old clients show) is escaped too.
    assert payload["text"] == f"Rejected: prod #{ticket.pk} Open &lt;port&gt; 22 <{link}|open>"
    heading, facts, context = payload["blocks"]
    # The title is escaped: a ticket cannot forge Slack links or mentions.
    assert heading["text"]["text"] == f"*<{link}|Rejected: prod #{ticket.pk} Open &lt;port&gt; 22>*"
    assert [f["text"] for f in facts["fields"]] == [
        "*Environment*\nprod",
        "*Who*\ntess",
        "*What*\nrejected",
        f"*Commit*\n`{ticket.commit_sha[:12]}`",
    ]
    assert "too &lt;wide&gt;" in context["elements"][0]["text"]
    slack = Notification.objects.get(channel="slack")
    assert (slack.recipient, slack.status, slack.attempts) == (None, "sent", 1)
    # The webhook URL is a secret: the row names its host only.
    assert slack.address == f"webhook {httpserver.host}:{httpserver.port}"
    # One team message per event; the author's email is separate.
    assert Notification.objects.filter(event="ticket.rejected").count() == 2


def test_slack_500_is_retried_with_backoff_and_finally_sent(
    httpserver: HTTPServer,
    settings: Any,
    author: User,
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "internal_error", status=500
    )
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok")
    waits: list[int] = []
    real_backoff = service.backoff
    monkeypatch.setattr(service, "backoff", lambda n: waits.append(real_backoff(n)) or waits[-1])
    with django_capture_on_commit_callbacks(execute=True):
        service.notify("drift.detected", subject="Drift in prod", body="3 resources", data={})
    httpserver.check_assertions()
    assert len(httpserver.log) == 2
    row = Notification.objects.get(channel="slack")
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert waits == [settings.NOTIFY_RETRY_BASE_SECONDS]


def test_without_a_webhook_or_for_other_events_slack_gets_nothing(
    httpserver: HTTPServer, settings: Any, author: User
) -> None:
    settings.SLACK_WEBHOOK_URL = ""
    service.notify("drift.detected", subject="s", body="b")
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    service.notify("some.internal.event", users=[author], subject="s", body="b")
    assert list(Notification.objects.values_list("channel", flat=True)) == ["email"]


def test_a_rolled_back_change_tells_neither_people_nor_slack(
    httpserver: HTTPServer,
    settings: Any,
    author: User,
    tech_lead: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    ticket = _ticket("staging", author, TicketStatus.AWAITING_APPROVAL)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.ticket_reject(ticket_id=ticket.pk, actor=tech_lead, reason="no")
        assert Notification.objects.count() == 2  # recorded inside the change...
        raise RuntimeError("the change failed")
    assert not Notification.objects.exists()  # ...and gone with it
    assert mail.outbox == [] and httpserver.log == []
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_APPROVAL


# --- SNS: on-call events only, through a moto server ------------------------------------


def _sns_topic_with_queue(endpoint: str) -> tuple[str, Any, str]:
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=endpoint)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, sqs, queue_url


def _received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        for message in batch:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _approved(env: str, author: User) -> Ticket:
    return _ticket(env, author, TicketStatus.APPROVED)


def test_sns_pages_on_call_for_prod_deploy_started_and_failed_only(
    moto_server: str,
    settings: Any,
    author: User,
    operations: User,
    no_dispatch: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    topic, sqs, queue_url = _sns_topic_with_queue(moto_server)
    settings.SNS_TOPIC_ARN = topic
    settings.AWS_ENDPOINT_URL = moto_server
    prod, staging, dev = (_approved(env, author) for env in ("prod", "staging", "dev"))
    with django_capture_on_commit_callbacks(execute=False):
        for ticket in (prod, staging, dev):
            with transaction.atomic():
                services.apply_start(
                    Ticket.objects.select_for_update().get(pk=ticket.pk), actor=operations
                )
    assert list(Notification.objects.filter(channel="sns").values_list("ticket", flat=True)) == [
        prod.pk
    ]
    # The prod apply fails: paged again; its success would not be.
    apply = TerraformRun.objects.get(ticket=prod, kind=RunKind.APPLY)
    TerraformRun.objects.filter(pk=apply.pk).update(status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=False):
        services.run_finish(
            run_id=apply.pk,
            exit_code=1,
            error="Error: AccessDenied creating bucket",
            plan=None,
            stale=False,
            terraform_version="1.11.4",
        )
    _deliver_queued()
    messages = _received(sqs, queue_url)
    assert sorted(m["Subject"] for m in messages) == [
        f"Deploy FAILED in prod: #{prod.pk} {prod.title}",
        f"Deploying to prod: #{prod.pk} {prod.title}",
    ]
    failed = next(m for m in messages if m["Subject"].startswith("Deploy FAILED"))
    assert "AccessDenied creating bucket" in failed["Message"]
    assert f"/tickets/{prod.pk}/" in failed["Message"]
    assert failed["MessageAttributes"]["event"]["Value"] == "deploy.failed"
    assert set(Notification.objects.filter(channel="sns").values_list("status", flat=True)) == {
        "sent"
    }
    # The people: author and Operations by email, except dev's quiet start (Slack only).
    started = Notification.objects.filter(event="deploy.started", channel="email")
    assert sorted((r.ticket_id, r.recipient.username) for r in started) == sorted(
        [(prod.pk, "alice"), (prod.pk, "opal"), (staging.pk, "alice"), (staging.pk, "opal")]
    )
    failed_mail = [m for m in mail.outbox if m.subject.startswith("Deploy FAILED")]
    assert sorted(m.to[0] for m in failed_mail) == ["alice@example.com", "opal@example.com"]


def test_sns_pages_for_an_emergency_and_an_alarm_but_not_for_approvals(
    moto_server: str, settings: Any, tech_lead: User, django_capture_on_commit_callbacks: Any
) -> None:
    topic, sqs, queue_url = _sns_topic_with_queue(moto_server)
    settings.SNS_TOPIC_ARN = topic
    settings.AWS_ENDPOINT_URL = moto_server
    with django_capture_on_commit_callbacks(execute=False):
        for event in ("approval.needed", "emergency.filed", "monitoring.alarm", "drift.detected"):
            service.notify(event, users=[tech_lead], subject=f"subject of {event}", body="b")
    _deliver_queued()
    assert sorted(m["Subject"] for m in _received(sqs, queue_url)) == [
        "subject of emergency.filed",
        "subject of monitoring.alarm",
    ]


# --- email preferences ---------------------------------------------------------------------


def test_preferences_page_opt_outs_are_respected_and_emergencies_still_arrive(
    author: User,
    lead: User,
    tech_lead: User,
    devops_lead: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = Client()
    client.force_login(tech_lead)
    page = client.get("/settings/")
    assert page.status_code == 200 and 'id="email-preferences-form"' in page.content.decode()
    saved = client.post(
        "/settings/", {"form": "email", "email_enabled": "on", "groups": ["deploys", "alerts"]}
    )
    assert saved.status_code == 302
    assert UserPreference.objects.get(user=tech_lead).email_opt_out == ["approvals", "followups"]
    assert AuditEvent.objects.filter(actor=tech_lead, action="preference.notifications").exists()
    UserPreference.objects.create(user=lead, email_enabled=False)
    bad = client.post("/settings/", {"form": "email", "groups": ["nonsense"]})
    assert bad.status_code == 200  # a form error; nothing changes
    assert UserPreference.objects.get(user=tech_lead).email_opt_out == ["approvals", "followups"]

    ticket = _ticket("staging", author, TicketStatus.AWAITING_APPROVAL)
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(
            "approval.needed",
            ticket=ticket,
            roles=["tech_lead", "lead_developer"],
            subject="s",
            body="b",
        )
        service.notify(
            "emergency.filed", roles=["tech_lead", "lead_developer"], subject="E", body="b"
        )
    skipped = {
        r.recipient.username: r.last_error
        for r in Notification.objects.filter(event="approval.needed", status="skipped")
    }
    assert skipped == {
        "tess": "the recipient opted out of approvals emails",
        "lena": "email switched off in the recipient's settings",
    }
    assert sorted((m.subject, m.to[0]) for m in mail.outbox) == [
        ("E", "lena@example.com"),
        ("E", "tess@example.com"),
    ]


# --- the notification log: failures visible, retried -------------------------------------


def _failed(ticket: Ticket | None, n: int = 1) -> list[Notification]:
    return [
        Notification.objects.create(
            event="deploy.failed",
            channel="slack",
            address="webhook hooks.example",
            ticket=ticket,
            subject=f"failed {i}",
            status="failed",
            attempts=5,
            last_error="HTTPError: HTTP Error 500: Internal Server Error",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("rows", [3, 20])
def test_notification_log_lists_failures_in_a_bounded_number_of_queries(
    rows: int, operations: User, author: User, django_assert_max_num_queries: Any
) -> None:
    ticket = _ticket("prod", author, TicketStatus.APPLY_FAILED)
    _failed(ticket, rows)
    Notification.objects.create(
        event="x", channel="email", subject="fine", status="sent", sent_at="2026-11-24T07:00:00Z"
    )
    client = Client()
    client.force_login(operations)
    with django_assert_max_num_queries(10):
        page = client.get("/notifications/?status=failed")
    text = page.content.decode()
    assert page.status_code == 200
    assert text.count("HTTP Error 500") == rows and "fine" not in text
    assert text.count(">Retry</button>") == rows


def test_retry_requeues_a_failed_notification_audited_and_it_is_sent(
    httpserver: HTTPServer,
    settings: Any,
    devops_lead: User,
    author: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    ticket = _ticket("prod", author, TicketStatus.APPLY_FAILED)
    (row,) = _failed(ticket)
    client = Client()
    client.force_login(devops_lead)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/notifications/{row.pk}/retry/")
    assert answer.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    httpserver.check_assertions()
    event = AuditEvent.objects.get(action="notification.retry")
    assert event.actor == devops_lead and event.ticket_id == ticket.pk
    assert event.data["attempts"] == 5 and "HTTP Error 500" in event.data["last_error"]
    # A second retry of a sent row is refused; nothing changes.
    again = client.post(f"/notifications/{row.pk}/retry/", follow=True)
    assert "only a failed notification can be retried" in again.content.decode()
    assert AuditEvent.objects.filter(action="notification.retry").count() == 1


def test_the_log_is_for_operations_and_leads_and_hides_invisible_tickets(
    developer: User, lead: User, author: User, settings: Any
) -> None:
    ticket = _ticket("prod", author, TicketStatus.APPLY_FAILED)
    (row,) = _failed(ticket)
    client = Client()
    client.force_login(developer)
    assert client.get("/notifications/").status_code == 403
    assert client.post(f"/notifications/{row.pk}/retry/").status_code == 403
    client.force_login(lead)  # a Lead Developer does not see prod tickets
    page = client.get("/notifications/")
    assert page.status_code == 200 and "failed 0" not in page.content.decode()
    assert client.post(f"/notifications/{row.pk}/retry/").status_code == 404
    assert Notification.objects.get(pk=row.pk).status == "failed"


def _finish_apply(ticket: Ticket, *, ok: bool) -> None:
    plan = ticket.current_plan
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.APPLYING)
    run = RunFactory(
        ticket=ticket, kind=RunKind.APPLY, status=RunStatus.RUNNING, plan=plan, plan_sha256=""
    )
    services.run_finish(
        run_id=run.pk,
        exit_code=0 if ok else 1,
        error="" if ok else "Error: quota exceeded",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
    )


def test_dev_auto_deploys_reach_slack_only_unless_they_fail(
    httpserver: HTTPServer,
    settings: Any,
    author: User,
    operations: User,
    no_dispatch: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SLACK_WEBHOOK_URL = httpserver.url_for("/hook")
    good = _ticket("dev", author, TicketStatus.APPROVED)
    bad = _ticket("dev", author, TicketStatus.APPROVED)
    with django_capture_on_commit_callbacks(execute=False):
        _finish_apply(good, ok=True)
        _finish_apply(bad, ok=False)
    told = sorted(
        (r.ticket_id, r.event, r.channel, r.recipient.username if r.recipient else "team")
        for r in Notification.objects.all()
    )
    assert told == sorted(
        [
            (good.pk, "deploy.succeeded", "slack", "team"),
            (bad.pk, "deploy.failed", "slack", "team"),
            (bad.pk, "deploy.failed", "email", "alice"),
        ]
    )
    # In staging, Operations hears about both.
    staged = _ticket("staging", author, TicketStatus.APPROVED)
    _finish_apply(staged, ok=True)
    assert sorted(
        Notification.objects.filter(ticket=staged, channel="email").values_list(
            "recipient__username", flat=True
        )
    ) == ["alice", "opal"]


# --- the same log in the API ------------------------------------------------------------------


@pytest.mark.parametrize("rows", [3, 20])
def test_notification_api_lists_and_filters_in_a_bounded_number_of_queries(
    rows: int, operations: User, author: User, django_assert_max_num_queries: Any
) -> None:
    ticket = _ticket("prod", author, TicketStatus.APPLY_FAILED)
    _failed(ticket, rows)
    service.notify("x", users=[author], subject="fine", body="b")
    client = api_for(operations)
    with django_assert_max_num_queries(10):
        answer = client.get("/api/v1/notifications/?status=failed&limit=100")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["count"] == rows
    assert {r["status"] for r in body["results"]} == {"failed"}
    assert body["results"][0]["ticket"] == ticket.pk
    assert "address" not in body["results"][0]  # colleagues' addresses are not listed


def test_notification_api_retry_and_refusals(
    operations: User, developer: User, lead: User, author: User, settings: Any
) -> None:
    ticket = _ticket("prod", author, TicketStatus.APPLY_FAILED)
    (row,) = _failed(ticket)
    assert api_for(developer).get("/api/v1/notifications/").status_code == 403
    assert api_for(operations).get("/api/v1/notifications/?status=nope").status_code == 400
    assert api_for(lead).post(f"/api/v1/notifications/{row.pk}/retry/").status_code == 404
    answer = api_for(operations).post(f"/api/v1/notifications/{row.pk}/retry/")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["status"], answer.json()["attempts"]) == ("queued", 0)
    again = api_for(operations).post(f"/api/v1/notifications/{row.pk}/retry/")
    assert again.status_code == 409
    assert again.json()["detail"] == "only a failed notification can be retried"
    assert AuditEvent.objects.filter(action="notification.retry").count() == 1
