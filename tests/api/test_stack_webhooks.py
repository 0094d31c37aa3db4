"""Pushes and stacks (issue 21): a push files one dev ticket per stack whose root or local
modules its commits changed, none for untouched stacks; a stack's repository may sign with
a webhook secret of its own, which vouches for that repository only."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from deployments.models import Stack, Ticket, WebhookDelivery
from deployments.services import webhooks
from deployments.services.stacks import StackInput, stack_save
from deployments.terraform.source import commit_all
from tests.helpers.stacks import sample_stacks

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/github/"
REPOSITORY, REPOSITORY_ID = "acme/infra", 4242


@pytest.fixture(autouse=True)
def _configured(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.GITHUB_REPOSITORY = REPOSITORY
    settings.GITHUB_REPOSITORY_ID = REPOSITORY_ID
    settings.GITHUB_WEBHOOK_SECRET = "main-secret"
    monkeypatch.setattr(webhooks, "webhook_dispatch", lambda delivery_pk: None)


def _push(sha: str, changed: dict[str, list[str]], repository: str = REPOSITORY) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": sha,
        "deleted": False,
        "head_commit": {"id": sha, "message": "Change a layer"},
        "commits": [{"id": sha, "added": [], "removed": [], "modified": [], **changed}],
        "sender": {"login": "nobody-linked", "id": 1},
        "repository": {"full_name": repository, "id": REPOSITORY_ID},
    }


def _deliver(payload: dict[str, Any], secret: str) -> Any:
    body = json.dumps(payload).encode()
    return APIClient().post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="push",
        HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()),
        HTTP_X_HUB_SIGNATURE_256="sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    )


def _process(response: Any) -> WebhookDelivery:
    assert response.status_code == 202, response.json()
    delivery = WebhookDelivery.objects.get(delivery_id=response.json()["delivery"])
    webhooks.webhook_process(delivery_pk=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _change(repo: Path, path: str) -> str:
    target = repo / path
    target.write_text(target.read_text() + "\n# changed\n")
    return commit_all(repo, f"change {path}")


def test_a_push_touching_only_the_application_layer_files_one_dev_ticket(
    infra_repo: Path, devops_lead: User
) -> None:
    Stack.default()
    _network, app = sample_stacks(devops_lead)
    sha = _change(infra_repo, "stacks/app/main.tf")
    delivery = _process(_deliver(_push(sha, {"modified": ["stacks/app/main.tf"]}), "main-secret"))
    assert delivery.status == "processed", delivery.outcome
    (ticket,) = Ticket.objects.all()
    assert (ticket.stack, ticket.environment.name, ticket.commit_sha) == (app, "dev", sha)
    assert ticket.title.startswith("[app] Merge to main")
    assert "dev app: ticket" in delivery.outcome


def test_a_shared_module_changes_every_stack_that_calls_it(
    infra_repo: Path, devops_lead: User
) -> None:
    Stack.default()
    sample_stacks(devops_lead)
    path = "terraform/modules/network/main.tf"
    sha = _change(infra_repo, path)
    delivery = _process(_deliver(_push(sha, {"modified": [path]}), "main-secret"))
    # The network stack calls ../../terraform/modules/network, as the default stack does;
    # the application layer calls no module of it.
    assert sorted(Ticket.objects.values_list("stack__name", flat=True)) == ["default", "network"]
    assert delivery.status == "processed"


def test_a_push_touching_no_stack_files_nothing(infra_repo: Path, devops_lead: User) -> None:
    Stack.default()
    sample_stacks(devops_lead)
    sha = _change(infra_repo, "README.md")
    delivery = _process(_deliver(_push(sha, {"modified": ["README.md"]}), "main-secret"))
    assert delivery.status == "ignored" and "changed no stack" in delivery.outcome
    assert not Ticket.objects.exists()


def test_an_incomplete_list_of_changes_counts_every_stack(
    infra_repo: Path, devops_lead: User
) -> None:
    Stack.default()
    sample_stacks(devops_lead)
    sha = _change(infra_repo, "README.md")
    payload = _push(sha, {"modified": ["README.md"]})
    payload["commits"] = payload["commits"] * 20  # GitHub lists at most 20 commits
    _process(_deliver(payload, "main-secret"))
    assert Ticket.objects.count() == 3


def test_each_repository_signs_with_its_own_secret(
    infra_repo: Path, devops_lead: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_WEBHOOK_SECRET", "data-secret")
    Stack.default()
    data = stack_save(
        actor=devops_lead,
        data=StackInput(
            name="data",
            repository=str(infra_repo),
            web_url="https://github.com/acme/data",
            webhook_secret_env="DATA_WEBHOOK_SECRET",
            root_dir="stacks/network",
        ),
    )
    sha = _change(infra_repo, "stacks/network/main.tf")
    payload = _push(sha, {"modified": ["stacks/network/main.tf"]}, repository="acme/data")
    # The data repository's own secret signs its deliveries; the portal's does not.
    response = _deliver(payload, "main-secret")
    assert (
        response.status_code == 401
        and "acme/data has a webhook secret of its own" in (response.json()["detail"])
    )
    # Nor does its secret vouch for another repository.
    other = _push(sha, {"modified": ["stacks/network/main.tf"]})
    response = _deliver(other, "data-secret")
    assert response.status_code == 401 and "but from acme/infra" in response.json()["detail"]
    assert not WebhookDelivery.objects.exists()
    delivery = _process(_deliver(payload, "data-secret"))
    assert delivery.status == "processed", delivery.outcome
    (ticket,) = Ticket.objects.all()
    assert ticket.stack == data
    # Nothing of the secret is stored.
    assert "data-secret" not in str(list(Stack.objects.values()))
