"""GitHub as it really sends: every example payload of @octokit/webhooks-examples (tests/data/
github_webhooks), signed as GitHub signs, is recorded and answered 2xx; a push of a large
merge (GitHub sends up to 25 MB) is read in bounded memory; a signed delivery over the limit
is refused and recorded; only the configured repository (name and id) is acted on; the
GitHub login of a portal user is linked in the admin."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from deployments.api.support import webhook_body
from deployments.api.webhooks import GitHubWebhookView
from deployments.models import AuditEvent, GitHubLogin, Ticket, WebhookDelivery
from deployments.services import webhooks
from tests.helpers.paths import ROOT

SECRET = "octokit-examples-secret"
URL = "/api/v1/webhooks/github/"
EXAMPLES: dict[str, list[dict[str, Any]]] = json.loads(
    gzip.decompress((ROOT / "tests/data/github_webhooks/examples.json.gz").read_bytes())
)
# The repository of the examples (octokit's fixtures all come from it).
HELLO_WORLD, HELLO_WORLD_ID = "Codertocat/Hello-World", 186853002


@pytest.fixture(autouse=True)
def _webhook(settings: Any) -> None:
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.GITHUB_REPOSITORY = "acme/infra"
    settings.GITHUB_REPOSITORY_ID = 4242


def signed(body: bytes, event: str, delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery."""
    return {
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4()),
        "HTTP_X_GITHUB_HOOK_ID": "292430182",
        "HTTP_USER_AGENT": "GitHub-Hookshot/044aadd",
        "HTTP_X_HUB_SIGNATURE_256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


def send(event: str, payload: Any, delivery: str | None = None) -> Any:
    # GitHub's bodies are compact JSON; the signature covers these exact bytes.
    body = json.dumps(payload, separators=(",", ":")).encode()
    return APIClient().post(
        URL, data=body, content_type="application/json", **signed(body, event, delivery)
    )


def _all_examples() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (event, n, payload) for event, items in EXAMPLES.items() for n, payload in enumerate(items)
    ]


def _id(event: str, n: int) -> str:
    """A delivery id in GitHub's alphabet (a GUID's: letters, digits and hyphens)."""
    return f"{event.replace('_', '-')}-{n}"


def test_the_vendored_examples_are_every_event_of_the_package() -> None:
    assert len(EXAMPLES) == 58 and sum(map(len, EXAMPLES.values())) == 329
    assert {"push", "pull_request", "ping", "projects_v2_item", "workflow_run"} <= set(EXAMPLES)


@pytest.mark.django_db
@pytest.mark.parametrize("configured", ["another repository", "the examples' repository"])
def test_every_real_event_is_recorded_and_answered_2xx(
    settings: Any,
    infra_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    configured: str,
) -> None:
    """Each of the 329 payloads: 202, recorded once with its status; the ones the portal
    does not act on ignored with the reason. With the examples' repository configured (and
    its `master` as the branch), the worker's side handles the rest without a crash."""
    if configured != "another repository":
        settings.GITHUB_REPOSITORY, settings.GITHUB_REPOSITORY_ID = HELLO_WORLD, HELLO_WORLD_ID
        settings.INFRA_BRANCH = "master"
    monkeypatch.setattr(webhooks, "webhook_dispatch", lambda *, delivery_pk: None)
    for event, n, payload in _all_examples():
        answer = send(event, payload, delivery=_id(event, n))
        assert answer.status_code == 202, (event, n, answer.json())
        recorded = WebhookDelivery.objects.get(delivery_id=_id(event, n))
        assert recorded.event == event
        assert recorded.status in {"ignored", "queued"}, (event, n, recorded.outcome)
        if recorded.status == "ignored":
            assert recorded.outcome, (event, n)
        assert answer.json()["status"] == recorded.status
    statuses = dict(
        WebhookDelivery.objects.values_list("delivery_id", "status").order_by("delivery_id")
    )
    queued = sorted(name for name, status in statuses.items() if status == "queued")
    if configured == "another repository":
        assert queued == []
        other = WebhookDelivery.objects.get(delivery_id="push-4")
        assert other.outcome == (
            f"push from {HELLO_WORLD} (id {HELLO_WORLD_ID}), not the configured acme/infra "
            "(id 4242)"
        )
        return
    # The pushes to master and the pull_request actions the portal reads.
    assert {"push-4", "push-5", "pull-request-0"} <= set(queued)
    assert WebhookDelivery.objects.get(delivery_id="push-0").outcome.startswith(
        "push of tag simple-tag"
    )
    for name in queued:
        delivery = WebhookDelivery.objects.get(delivery_id=name)
        webhooks.webhook_process(delivery_pk=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status in {"processed", "ignored", "failed"}, (name, delivery.outcome)
        assert delivery.outcome, name
        if delivery.status == "failed":  # octokit's commits are not in our repository
            assert name.startswith("push-")
            assert "is not in the infrastructure repository" in delivery.outcome
    assert not Ticket.objects.exists()
    receipts = AuditEvent.objects.filter(action="webhook.receive").count()
    assert receipts == sum(map(len, EXAMPLES.values()))


def _big_push(sha: str, size: int) -> bytes:
    """A real push payload (octokit's push to master), from the configured repository,
    with as many commits as make it ``size`` bytes: a large merge."""
    payload = json.loads(json.dumps(EXAMPLES["push"][4]))
    payload.update(ref="refs/heads/main", after=sha, before="1" * 40)
    payload["repository"].update(full_name="acme/infra", id=4242)
    payload["head_commit"].update(id=sha, message="Merge the big refactor\n\ndetails")
    commit = dict(payload["head_commit"], added=[f"modules/m{i}/main.tf" for i in range(40)])
    one = len(json.dumps(commit, separators=(",", ":")))
    payload["commits"] = [commit] * (size // (one + 1))
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.mark.django_db
def test_a_20_mb_push_to_main_is_read_in_bounded_memory_and_files_the_dev_ticket(
    head_sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused with 413 and never recorded while the limit was the API's 4 MiB; a large
    merge then silently did not deploy dev."""
    monkeypatch.setattr(webhooks, "webhook_dispatch", lambda *, delivery_pk: None)
    body = _big_push(head_sha, 20 * 1024 * 1024)
    assert len(body) > 19 * 1024 * 1024
    request = RequestFactory().post(
        URL, data=body, content_type="application/json", **signed(body, "push", "big-1")
    )
    view = GitHubWebhookView.as_view()
    tracemalloc.start()
    try:
        answer = view(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 202, answer.data
    # The whole document as Python objects would take several times the body; streamed,
    # the request holds about one spool of it (1 MiB) and a few chunks, whatever its size.
    assert peak < 8 * 1024 * 1024, peak
    delivery = WebhookDelivery.objects.get(delivery_id="big-1")
    assert delivery.status == "queued"
    assert delivery.payload["after"] == head_sha
    assert delivery.payload["head_commit"] == {"message": "Merge the big refactor\n\ndetails"}
    assert len(json.dumps(delivery.payload)) < 2000  # the commits are not kept
    webhooks.webhook_process(delivery_pk=delivery.pk)
    ticket = Ticket.objects.get()
    assert (ticket.environment.name, ticket.commit_sha) == ("dev", head_sha)
    assert ticket.title == "Merge to main: Merge the big refactor"


@pytest.mark.django_db
def test_a_signed_delivery_over_the_limit_is_refused_and_recorded_unsigned_noise_is_not(
    settings: Any, head_sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "webhook_dispatch", lambda *, delivery_pk: None)
    settings.GITHUB_WEBHOOK_MAX_BYTES = 64 * 1024
    body = _big_push(head_sha, 100 * 1024)
    client = APIClient()
    answer = client.post(
        URL, data=body, content_type="application/json", **signed(body, "push", "over-1")
    )
    assert answer.status_code == 413
    assert "over the 65536-byte limit (GITHUB_WEBHOOK_MAX_BYTES)" in answer.json()["detail"]
    refused = WebhookDelivery.objects.get(delivery_id="over-1")
    assert refused.status == "refused" and refused.outcome.startswith("HTTP 413: ")
    assert f"request body is {len(body)} bytes" in refused.outcome
    # Unsigned (or signed with another secret), or past twice the limit: nothing recorded.
    forged = signed(body, "push", "over-2") | {"HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64}
    assert client.post(URL, data=body, content_type="application/json", **forged).status_code == (
        401
    )
    huge = _big_push(head_sha, 200 * 1024)
    answer = client.post(
        URL, data=huge, content_type="application/json", **signed(huge, "push", "over-3")
    )
    assert answer.status_code == 413
    assert set(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == {"over-1"}
    # The operator raises the limit and presses Redeliver: the same record is received.
    settings.GITHUB_WEBHOOK_MAX_BYTES = 25 * 1024 * 1024
    again = client.post(
        URL, data=body, content_type="application/json", **signed(body, "push", "over-1")
    )
    assert again.status_code == 202, again.json()
    refused.refresh_from_db()
    assert refused.status == "queued" and refused.payload["after"] == head_sha
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("repository", "settings_pair", "reason"),
    [
        (
            {"full_name": "evil/other-repo", "id": 4242},
            ("acme/infra", 4242),
            "from evil/other-repo (id 4242), not the configured acme/infra (id 4242)",
        ),
        (
            # A deleted repository's name registered again by someone else: a new id.
            {"full_name": "acme/infra", "id": 999},
            ("acme/infra", 4242),
            "from acme/infra (id 999), not the configured acme/infra (id 4242)",
        ),
        ({}, ("acme/infra", 4242), "from no repository, not the configured"),
        (
            {"full_name": "acme/infra", "id": 4242},
            ("acme/infra", 0),
            "GITHUB_REPOSITORY and GITHUB_REPOSITORY_ID are not both set",
        ),
        (
            {"full_name": "acme/infra", "id": 4242},
            ("", 4242),
            "GITHUB_REPOSITORY and GITHUB_REPOSITORY_ID are not both set",
        ),
    ],
)
def test_a_delivery_from_another_repository_is_recorded_and_ignored(
    settings: Any,
    head_sha: str,
    repository: dict[str, Any],
    settings_pair: tuple[str, int],
    reason: str,
) -> None:
    settings.GITHUB_REPOSITORY, settings.GITHUB_REPOSITORY_ID = settings_pair
    payload = json.loads(json.dumps(EXAMPLES["push"][4]))
    payload.update(ref="refs/heads/main", after=head_sha, repository=repository)
    answer = send("push", payload, delivery="other-1")
    assert answer.status_code == 202
    delivery = WebhookDelivery.objects.get(delivery_id="other-1")
    assert delivery.status == "ignored" and reason in delivery.outcome
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_the_repository_is_checked_again_when_the_worker_acts(settings: Any, head_sha: str) -> None:
    payload = json.loads(json.dumps(EXAMPLES["push"][4]))
    payload.update(ref="refs/heads/main", after=head_sha)
    payload["repository"].update(full_name="acme/infra", id=4242)
    delivery, _ = webhooks.webhook_receive(delivery_id="d-1", event="push", payload=payload)
    assert delivery.status == "queued"
    settings.GITHUB_REPOSITORY_ID = 5151  # the portal was pointed at another repository
    webhooks.webhook_process(delivery_pk=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "ignored" and "not the configured acme/infra (id 5151)" in (
        delivery.outcome
    )
    assert not Ticket.objects.exists()


def test_only_the_named_paths_are_read_and_keys_cannot_stand_in_for_them() -> None:
    document = {
        "repository.full_name": "evil/dotted-key",
        "commits": [{"repository": {"full_name": "evil/in-a-list"}}],
        "client_payload": {"repository": {"full_name": "evil/nested"}},
        "repository": {"full_name": "acme/infra", "id": 4242, "owner": {"id": 1}},
        "sender": {"login": "alice-gh", "id": 7, "site_admin": False},
        "ref": "refs/heads/main",
        "number": 1.5,
    }
    found = webhook_body.read_fields(io.BytesIO(json.dumps(document).encode()), max_depth=32)
    assert found == {
        "repository": {"full_name": "acme/infra", "id": 4242},
        "sender": {"login": "alice-gh", "id": 7},
        "ref": "refs/heads/main",
        "number": None,
        # The push's commits are counted (their changed files say which stacks changed).
        "commit_count": 1,
    }


# --- the admin: GitHub logins and the deliveries page ---------------------------------


@pytest.fixture
def admin_client(db: None) -> tuple[Client, User]:
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    return client, admin


def _user_form(client: Client, user: User, login: str) -> dict[str, Any]:
    page = client.get(f"/admin/auth/user/{user.pk}/change/")
    assert page.status_code == 200
    assert b"GitHub login" in page.content
    existing = GitHubLogin.objects.filter(user=user).first()
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
        "groups": list(user.groups.values_list("pk", flat=True)),
        "github_login-TOTAL_FORMS": "1",
        "github_login-INITIAL_FORMS": "1" if existing else "0",
        "github_login-MIN_NUM_FORMS": "0",
        "github_login-MAX_NUM_FORMS": "1",
        "github_login-0-login": login,
        "github_login-0-id": str(existing.pk) if existing else "",
        "github_login-0-user": str(user.pk),
    }


def test_an_admin_links_a_github_login_and_it_is_audited(
    admin_client: tuple[Client, User], author: User
) -> None:
    client, admin = admin_client
    saved = client.post(
        f"/admin/auth/user/{author.pk}/change/", _user_form(client, author, "alice-gh")
    )
    assert saved.status_code == 302, saved.content[:2000]
    assert GitHubLogin.objects.get(user=author).login == "alice-gh"
    event = AuditEvent.objects.get(action="account.github_login")
    assert event.actor == admin
    assert event.data == {"user": "alice", "before": "", "after": "alice-gh"}
    # Not a GitHub name: the form says so and nothing changes.
    refused = client.post(
        f"/admin/auth/user/{author.pk}/change/", _user_form(client, author, "not a login!")
    )
    assert refused.status_code == 200 and b"a GitHub username" in refused.content
    # Two users cannot claim one GitHub account (case ignored).
    other = User.objects.create_user("bob")
    taken = client.post(
        f"/admin/auth/user/{other.pk}/change/", _user_form(client, other, "ALICE-GH")
    )
    assert taken.status_code == 200
    assert not GitHubLogin.objects.filter(user=other).exists()
    assert GitHubLogin.objects.get(user=author).login == "alice-gh"
    assert AuditEvent.objects.filter(action="account.github_login").count() == 1


def test_a_refused_delivery_shows_on_the_deliveries_page_with_its_reason(
    admin_client: tuple[Client, User],
) -> None:
    body = b"payload=%7B%7D"
    answer = APIClient().post(
        URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        **signed(body, "push", "form-1"),
    )
    assert answer.status_code == 415
    client, _ = admin_client
    page = client.get("/admin/deployments/webhookdelivery/?status__exact=refused")
    assert page.status_code == 200
    assert b"form-1" in page.content
    assert b"configure the webhook with content type application/json" in page.content
