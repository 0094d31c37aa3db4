"""GitHub webhooks: signature (GitHub's test vector), refusals that write nothing, events
ignored with their reason, redelivery processed once, pusher mapping, PR metadata, and a
signed push to main that a real worker turns into one completed dev deploy."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from deployments.models import AuditEvent, Ticket, WebhookDelivery
from deployments.services import accounts, webhooks
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.waiting import wait_for

SECRET = "webhook-test-secret"
URL = "/api/v1/webhooks/github/"
REPOSITORY, REPOSITORY_ID = "acme/infra", 4242


@pytest.fixture(autouse=True)
def _configured_repository(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.GITHUB_REPOSITORY = REPOSITORY
    settings.GITHUB_REPOSITORY_ID = REPOSITORY_ID
    # A worker process started by the test reads them from its environment.
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("GITHUB_REPOSITORY_ID", str(REPOSITORY_ID))


@pytest.fixture
def secret(settings: Any) -> str:
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    return SECRET


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    event: str,
    payload: Any,
    *,
    delivery: str | None = None,
    signature: str | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4()),
    }
    if signature != "":
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature or sign(body)
    return APIClient().post(URL, data=body, content_type=content_type, **headers)


def push(sha: str, ref: str = "refs/heads/main", pusher: str = "alice") -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "1" * 40,
        "after": sha,
        "deleted": False,
        "head_commit": {"id": sha, "message": "Scale the app tier\n\nlonger text"},
        "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
        "sender": {"login": pusher, "id": 1000},
        "repository": {"full_name": REPOSITORY, "id": REPOSITORY_ID},
    }


# --- the signature --------------------------------------------------------------------


def test_githubs_documented_test_vector() -> None:
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert webhooks.signature_valid("It's a Secret to Everybody", b"Hello, World!", header)
    assert not webhooks.signature_valid("It's a Secret to Everybody", b"Hello, World?", header)
    assert not webhooks.signature_valid("another secret", b"Hello, World!", header)
    assert not webhooks.signature_valid("It's a Secret to Everybody", b"Hello, World!", "")
    assert not webhooks.signature_valid("", b"Hello, World!", header)
    sha1 = "sha1=" + hmac.new(b"It's a Secret to Everybody", b"Hello, World!", "sha1").hexdigest()
    assert not webhooks.signature_valid("It's a Secret to Everybody", b"Hello, World!", sha1)


@pytest.mark.django_db
def test_the_test_vector_through_the_endpoint(settings: Any) -> None:
    """The real endpoint accepts GitHub's vector (the body is not JSON: 400, but after the
    signature was accepted, not 401)."""
    settings.GITHUB_WEBHOOK_SECRET = "It's a Secret to Everybody"
    answer = deliver(
        "push",
        None,
        raw=b"Hello, World!",
        signature="sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )
    assert answer.status_code == 400
    assert "malformed" in answer.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("signature", "detail"),
    [
        ("", "X-Hub-Signature-256 is missing"),
        ("sha256=" + "0" * 64, "does not match"),
        ("sha1=abc", "does not match"),
        (sign(b"another body"), "does not match"),
        (sign(b"{}", "wrong secret"), "does not match"),
    ],
)
def test_missing_or_bad_signature_is_401_and_writes_nothing(
    secret: str, head_sha: str, signature: str, detail: str
) -> None:
    events_before = AuditEvent.objects.count()
    answer = deliver("push", push(head_sha), signature=signature)
    assert answer.status_code == 401
    assert detail in answer.json()["detail"]
    assert not WebhookDelivery.objects.exists()
    assert not Ticket.objects.exists()
    assert AuditEvent.objects.count() == events_before


@pytest.mark.django_db
def test_unset_secret_is_401_naming_the_setting(settings: Any) -> None:
    settings.GITHUB_WEBHOOK_SECRET = ""
    answer = deliver("push", {"zen": "x"}, signature=sign(b"{}", "anything"))
    assert answer.status_code == 401
    assert "GITHUB_WEBHOOK_SECRET" in answer.json()["detail"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "content_type", "code", "reason"),
    [
        (b"{not json", "application/json", 400, "malformed request body: JSON parse error"),
        (b"[1, 2]", "application/json", 400, "must be a JSON object"),
        (b'{"zen": NaN}', "application/json", 400, "JSON parse error"),
        (b'{"a": 1} trailing', "application/json", 400, "JSON parse error"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "application/json", 400, "nested deeper than 32"),
        (b'{"ref": "refs/heads/\\u0000"}', "application/json", 400, "ref holds a NUL"),
        (b"payload=%7B%7D", "application/x-www-form-urlencoded", 415, "application/json"),
    ],
)
def test_a_signed_delivery_that_cannot_be_read_is_refused_and_recorded(
    secret: str, raw: bytes, content_type: str, code: int, reason: str
) -> None:
    """Refused with the reason, and kept with it among the deliveries (not silently lost)."""
    answer = deliver("push", None, raw=raw, content_type=content_type, delivery="bad-1")
    assert answer.status_code == code, answer.json()
    assert reason in answer.json()["detail"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.delivery_id, delivery.event, delivery.status) == ("bad-1", "push", "refused")
    assert reason in delivery.outcome and delivery.outcome.startswith(f"HTTP {code}: ")
    assert delivery.payload == {} and delivery.processed_at is not None
    refused = AuditEvent.objects.get(action="webhook.refuse")
    assert refused.data["delivery"] == "bad-1" and reason in refused.data["reason"]
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_missing_github_headers_are_refused_and_recorded_under_an_id_of_their_own(
    secret: str,
) -> None:
    no_delivery = APIClient().post(
        URL,
        data=b"{}",
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="push",
        HTTP_X_HUB_SIGNATURE_256=sign(b"{}"),
    )
    assert no_delivery.status_code == 400
    assert "X-GitHub-Delivery" in no_delivery.json()
    no_event = deliver("", {}, delivery="no-event")
    assert no_event.status_code == 400 and "X-GitHub-Event" in no_event.json()
    recorded = {d.delivery_id: d for d in WebhookDelivery.objects.all()}
    assert recorded["no-event"].status == "refused" and recorded["no-event"].event == "(none)"
    (generated,) = [d for name, d in recorded.items() if name.startswith("refused-")]
    assert generated.status == "refused" and "X-GitHub-Delivery" in generated.outcome


# --- what is ignored, with the reason recorded -----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("push", push("a" * 40, ref="refs/heads/feature/x"), "push to refs/heads/feature/x"),
        ("push", push("a" * 40, ref="refs/tags/v1.0"), "push of tag v1.0"),
        ("push", push("0" * 40) | {"deleted": True}, "was deleted"),
        ("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, "ping"),
        ("issues", {"action": "opened"}, "issues events are not used"),
        (
            "pull_request",
            {
                "action": "labeled",
                "pull_request": {},
                "repository": {"full_name": REPOSITORY, "id": REPOSITORY_ID},
            },
            "changes nothing",
        ),
        ("projects_v2_item", {"action": "edited"}, "projects_v2_item events are not used"),
        ("projects_v2", {"action": "created"}, "projects_v2 events are not used"),
        ("projects_v2_status_update", {"action": "created"}, "events are not used"),
    ],
)
def test_other_refs_and_events_are_acknowledged_and_ignored(
    secret: str, event: str, payload: dict[str, Any], reason: str
) -> None:
    answer = deliver(event, payload, delivery="d-1")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["status"] == "ignored"
    assert reason in answer.json()["outcome"]
    delivery = WebhookDelivery.objects.get(delivery_id="d-1")
    assert (delivery.event, delivery.status) == (event, "ignored")
    assert reason in delivery.outcome
    assert not Ticket.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.receive").count() == 1


@pytest.mark.django_db
def test_redelivery_is_recorded_once(secret: str, head_sha: str) -> None:
    first = deliver("push", push(head_sha, ref="refs/heads/other"), delivery="same-id")
    again = deliver("push", push(head_sha, ref="refs/heads/other"), delivery="same-id")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["detail"].startswith("already processed")
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_redelivery_of_a_delivery_never_picked_up_sends_it_again(
    secret: str, head_sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(
        webhooks, "webhook_dispatch", lambda *, delivery_pk: sent.append(delivery_pk)
    )
    delivery, created = webhooks.webhook_receive(
        delivery_id="lost-1", event="push", payload=push(head_sha)
    )
    assert created and sent == []  # on commit, which this test's transaction never reaches
    again = deliver("push", push(head_sha), delivery="lost-1")
    assert again.status_code == 200
    assert again.json()["status"] == "queued"
    assert sent == [delivery.pk]
    webhooks.webhook_process(delivery_pk=delivery.pk)
    assert Ticket.objects.count() == 1
    deliver("push", push(head_sha), delivery="lost-1")
    assert sent == [delivery.pk]  # processed: not sent again


# --- the worker's side, called directly --------------------------------------------------


def _queued(event: str, payload: dict[str, Any]) -> WebhookDelivery:
    delivery, created = webhooks.webhook_receive(
        delivery_id=str(uuid.uuid4()), event=event, payload=payload
    )
    assert created and delivery.status == "queued"
    return delivery


@pytest.mark.django_db
def test_push_files_a_dev_ticket_as_the_pusher(head_sha: str, author: User) -> None:
    accounts.github_login_set(actor="test", user=author, login="alice")
    delivery = _queued("push", push(head_sha, pusher="alice"))
    webhooks.webhook_process(delivery_pk=delivery.pk)
    ticket = Ticket.objects.get()
    assert (ticket.environment.name, ticket.commit_sha, ticket.author) == ("dev", head_sha, author)
    assert ticket.source == "github"
    assert ticket.title == "Merge to main: Scale the app tier"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.ticket) == ("processed", ticket)
    assert f"dev: ticket #{ticket.pk} by alice" == delivery.outcome
    # Processed once: running it again (a duplicate task) changes nothing.
    webhooks.webhook_process(delivery_pk=delivery.pk)
    assert Ticket.objects.count() == 1
    # Another delivery for the same commit files nothing new.
    second = _queued("push", push(head_sha))
    webhooks.webhook_process(delivery_pk=second.pk)
    assert Ticket.objects.count() == 1
    assert "already filed" in WebhookDelivery.objects.get(pk=second.pk).outcome


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sender", "why"),
    [
        ("stranger", "GitHub user stranger is linked to no portal user"),
        # A GitHub name equal to a username maps to no one: "admin" is the superuser here.
        ("admin", "GitHub user admin is linked to no portal user"),
        ("alice", "GitHub user alice is linked to no portal user"),
        ("opal-gh", "opal (opal-gh) may not file in dev"),
        ("dave-gh", "dave (dave-gh) is inactive"),
    ],
)
def test_a_push_is_filed_as_a_person_only_through_a_linked_login(
    head_sha: str, author: User, operations: User, developer: User, sender: str, why: str
) -> None:
    """Issue 16, hole 9: `pusher.name: "admin"` filed a dev ticket as the superuser."""
    User.objects.create_superuser("admin", "admin@example.com", "x")
    accounts.github_login_set(actor="test", user=operations, login="opal-gh")
    accounts.github_login_set(actor="test", user=developer, login="dave-gh")
    User.objects.filter(pk=developer.pk).update(is_active=False)
    payload = push(head_sha, pusher=sender)
    delivery = _queued("push", payload)
    webhooks.webhook_process(delivery_pk=delivery.pk)
    ticket = Ticket.objects.get()
    assert ticket.author.username == "github"
    assert list(ticket.author.groups.values_list("name", flat=True)) == ["developer"]
    assert not ticket.author.has_usable_password()
    delivery.refresh_from_db()
    assert delivery.outcome == f"dev: ticket #{ticket.pk} by github ({why})"


@pytest.mark.django_db
def test_the_link_is_by_sender_login_ignoring_case_and_audited(head_sha: str, author: User) -> None:
    accounts.github_login_set(actor="test", user=author, login="Alice-GH")
    linked = AuditEvent.objects.get(action="account.github_login")
    assert linked.data == {"user": "alice", "before": "", "after": "Alice-GH"}
    # pusher.name is not who pushed as far as the portal is concerned: sender.login is.
    payload = push(head_sha, pusher="someone-else") | {"sender": {"login": "alice-gh", "id": 7}}
    webhooks.webhook_process(delivery_pk=_queued("push", payload).pk)
    assert Ticket.objects.get().author == author
    accounts.github_login_set(actor="test", user=author, login="")
    assert AuditEvent.objects.filter(action="account.github_login").count() == 2
    assert not author.__class__.objects.filter(github_login__isnull=False).exists()


@pytest.mark.django_db
def test_push_of_an_unknown_commit_fails_with_the_reason(infra_repo: Path) -> None:
    delivery = _queued("push", push("b" * 40))
    webhooks.webhook_process(delivery_pk=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "is not in the infrastructure repository" in delivery.outcome
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_a_redelivery_of_a_failed_delivery_tries_it_again(
    secret: str, infra_repo: Path, author: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub's Redeliver retries a delivery that failed (here: the commit was not in the
    repository yet); once processed, a redelivery is not acted on again."""
    sent: list[int] = []
    monkeypatch.setattr(
        webhooks, "webhook_dispatch", lambda *, delivery_pk: sent.append(delivery_pk)
    )
    (infra_repo / "terraform" / "late.txt").write_text("pushed before the mirror had it\n")
    sha = commit_all(infra_repo, "A late commit")
    delivery = _queued("push", push(sha))
    monkeypatch.setattr(webhooks.tf.InfraRepo, "has_commit", lambda self, sha: False)
    webhooks.webhook_process(delivery_pk=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and not Ticket.objects.exists()
    monkeypatch.undo()
    monkeypatch.setattr(
        webhooks, "webhook_dispatch", lambda *, delivery_pk: sent.append(delivery_pk)
    )
    again = deliver("push", push(sha), delivery=delivery.delivery_id)
    assert again.status_code == 200
    assert (again.json()["status"], sent) == ("queued", [delivery.pk])
    assert AuditEvent.objects.filter(action="webhook.retry").count() == 1
    webhooks.webhook_process(delivery_pk=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "processed"
    assert Ticket.objects.get().commit_sha == sha
    deliver("push", push(sha), delivery=delivery.delivery_id)
    assert sent == [delivery.pk] and Ticket.objects.count() == 1


@pytest.mark.django_db
def test_pull_request_metadata_is_attached(
    secret: str, head_sha: str, author: User, lead: User
) -> None:
    ticket = (
        api_for(author)
        .post(
            "/api/v1/tickets/",
            {"title": "t", "environment": "staging", "commit_sha": head_sha},
            format="json",
        )
        .json()
    )
    pr = {
        "action": "opened",
        "number": 42,
        "pull_request": {
            "number": 42,
            "html_url": "https://github.com/acme/infra/pull/42",
            "title": "Scale the app tier",
            "user": {"login": "alice-gh"},
            "state": "open",
            "head": {"sha": head_sha, "ref": "scale"},
        },
        "repository": {"full_name": REPOSITORY, "id": REPOSITORY_ID},
    }
    delivery = _queued("pull_request", pr)
    webhooks.webhook_process(delivery_pk=delivery.pk)
    detail = api_for(lead).get(f"/api/v1/tickets/{ticket['id']}/").json()
    assert detail["pull_request_url"] == "https://github.com/acme/infra/pull/42"
    assert detail["pull_request"] == {
        "number": 42,
        "url": "https://github.com/acme/infra/pull/42",
        "title": "Scale the app tier",
        "author": "alice-gh",
        "state": "open",
    }
    assert AuditEvent.objects.filter(action="ticket.pull_request", ticket_id=ticket["id"]).exists()
    # A later synchronize with a new title updates the record, not a second one.
    pr["action"] = "synchronize"
    pr["pull_request"]["title"] = "Scale the app tier (v2)"
    webhooks.webhook_process(delivery_pk=_queued("pull_request", pr).pk)
    detail = api_for(lead).get(f"/api/v1/tickets/{ticket['id']}/").json()
    assert detail["pull_request"]["title"] == "Scale the app tier (v2)"


def _merged_pr(head: str, merge_commit: str) -> dict[str, Any]:
    return {
        "action": "closed",
        "number": 7,
        "pull_request": {
            "number": 7,
            "html_url": "https://github.com/acme/infra/pull/7",
            "title": "Add a note",
            "user": {"login": "alice-gh"},
            "state": "closed",
            "merged": True,
            "merge_commit_sha": merge_commit,
            "head": {"sha": head, "ref": "note"},
        },
        "repository": {"full_name": REPOSITORY, "id": REPOSITORY_ID},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["push first", "pull_request first"])
def test_the_dev_ticket_of_a_merge_commit_links_its_pull_request(
    head_sha: str, author: User, order: str
) -> None:
    """A merge (or squash) puts a new commit on main: the push deploys that commit, not the
    PR's head. Whichever delivery comes first, the dev ticket links the merged PR."""
    pr_head = "c" * 40
    deliveries = [
        _queued("push", push(head_sha)),
        _queued("pull_request", _merged_pr(pr_head, head_sha)),
    ]
    for delivery in deliveries if order == "push first" else reversed(deliveries):
        webhooks.webhook_process(delivery_pk=delivery.pk)
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "processed"
    ticket = Ticket.objects.get()
    assert (ticket.environment.name, ticket.commit_sha) == ("dev", head_sha)
    assert ticket.pull_request_url == "https://github.com/acme/infra/pull/7"
    detail = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["pull_request"] == {
        "number": 7,
        "url": "https://github.com/acme/infra/pull/7",
        "title": "Add a note",
        "author": "alice-gh",
        "state": "merged",
    }
    page = Client()
    page.force_login(author)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert (
        '<a href="https://github.com/acme/infra/pull/7" rel="noopener">#7 Add a note</a> '
        "by alice-gh (merged)"
    ) in html


@pytest.mark.django_db
def test_an_open_pull_requests_test_merge_commit_is_not_taken_for_its_merge(
    head_sha: str, author: User
) -> None:
    """GitHub also sends merge_commit_sha for open pull requests (a trial merge): only a
    merged PR's counts."""
    pr = _merged_pr("c" * 40, head_sha)
    pr["action"] = "synchronize"
    pr["pull_request"].update(merged=False, state="open")
    webhooks.webhook_process(delivery_pk=_queued("pull_request", pr).pk)
    webhooks.webhook_process(delivery_pk=_queued("push", push(head_sha)).pk)
    ticket = Ticket.objects.get()
    assert ticket.pull_request_url == ""
    assert api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()["pull_request"] is None


# --- end to end, with a real worker ------------------------------------------------------


@pytest.mark.worker
@pytest.mark.terraform
def test_signed_push_to_main_deploys_dev_once_even_when_redelivered(
    celery_worker_process: Any, infra_repo: Path, secret: str, author: User
) -> None:
    (infra_repo / "terraform" / "webhook_note.txt").write_text("merged by the webhook test\n")
    sha = commit_all(infra_repo, "Merge pull request #7: a note")
    accounts.github_login_set(actor="test", user=author, login="alice")
    payload = push(sha, pusher="alice")
    first = deliver("push", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 202, first.json()
    assert first.json()["status"] == "queued"
    ticket = wait_for(
        lambda: Ticket.objects.filter(commit_sha=sha).first(), timeout=60, what="the ticket"
    )
    done = wait_for(
        lambda: Ticket.objects.filter(
            pk=ticket.pk, status__in=["completed", "apply_failed", "plan_failed"]
        ).first(),
        timeout=240,
        what="the dev deploy",
    )
    assert done.status == "completed", done.status_reason
    assert (done.environment.name, done.author.username) == ("dev", "alice")
    assert done.runs.filter(kind="apply", status="succeeded").count() == 1
    again = deliver("push", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert again.status_code == 200
    assert again.json()["status"] == "processed"
    assert Ticket.objects.filter(commit_sha=sha).count() == 1
    assert WebhookDelivery.objects.get().ticket_id == ticket.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_commit_racing_file_one_ticket(head_sha: str, author: User) -> None:
    """Two deliveries under different ids for the same new commit, processed at once by two
    workers (threads with their own connections): one ticket, the other says already filed."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks between connections)")
    deliveries = [_queued("push", push(head_sha)) for _ in range(4)]
    barrier = threading.Barrier(len(deliveries))
    errors: list[BaseException] = []

    def process(pk: int) -> None:
        try:
            barrier.wait()
            webhooks.webhook_process(delivery_pk=pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=process, args=(d.pk,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert Ticket.objects.filter(commit_sha=head_sha).count() == 1
    outcomes = sorted(WebhookDelivery.objects.values_list("outcome", flat=True))
    assert sum("already filed" in o for o in outcomes) == 3, outcomes
