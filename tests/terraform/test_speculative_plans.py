"""Speculative plans: the pull request's check is a plan only (issue 17, item 5).

POST /api/v1/plans/ queues `terraform plan` of any commit in one environment, on that
environment's queue, with its plan credentials; GET answers its status, exit code, summary
and bounded log. No ticket, nothing to approve, no plan file kept, no path to an apply.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import RunStatus
from deployments.lib.queues import route
from deployments.models import (
    ApiKeyScope,
    AuditEvent,
    Environment,
    SpeculativePlan,
    TerraformRun,
    Ticket,
)
from deployments.services import plans
from deployments.terraform.source import commit_all
from tests.helpers.api import api_for
from tests.helpers.aws import credentials_file, probe_terraform, sha256_hex
from tests.helpers.keys import keyed, new_key

PR = "https://github.com/acme/infra/pull/7"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Speculative plans handed to the broker (ids), instead of sending them."""
    ids: list[int] = []
    monkeypatch.setattr(
        "deployments.tasks.speculative_plan_run.apply_async",
        lambda args, **kw: ids.append(args[0]),
    )
    return ids


def _branch(repo: Path) -> str:
    """A pull request's head: a commit on a branch, not on main."""
    env = {**os.environ, "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "checkout", "-q", "-b", "pr-7"], cwd=repo, env=env, check=True)
    (repo / "terraform" / "pr.tf").write_text('locals {\n  pr = "seven"\n}\n')
    sha = commit_all(repo, "PR 7")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, env=env, check=True)
    return sha


def _request(user: User, **body: Any) -> Any:
    return api_for(user).post("/api/v1/plans/", body, format="json")


# --- filing ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_plan_is_queued_on_its_environments_queue_and_files_no_ticket(
    author: User, infra_repo: Path, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    sha = _branch(infra_repo)
    with django_capture_on_commit_callbacks(execute=True):
        answer = _request(author, environment="dev", commit_sha=sha.upper(), pull_request_url=PR)
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    plan = SpeculativePlan.objects.get()
    assert body["id"] == plan.pk and body["status"] == "queued"
    assert body["url"] == f"/api/v1/plans/{plan.pk}/"
    assert (body["environment"], body["commit_sha"], body["pull_request_url"]) == ("dev", sha, PR)
    assert body["summary"] is None and body["log"] == "" and body["requested_by"] == "alice"
    assert sent == [plan.pk]
    assert route("deployments.tasks.speculative_plan_run", [plan.pk], {}, {}) == {
        "queue": "terraform.dev"
    }
    assert not Ticket.objects.exists() and not TerraformRun.objects.exists()
    event = AuditEvent.objects.get(action="speculative_plan.queue")
    assert event.actor_name == "alice" and event.ticket is None
    assert event.data == {
        "speculative_plan": plan.pk,
        "environment": "dev",
        "commit_sha": sha,
        "pull_request_url": PR,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field", "says"),
    [
        ({"environment": "qa", "commit_sha": "HEAD"}, 400, "commit_sha", "40-character"),
        ({"environment": "nope", "commit_sha": "SHA"}, 400, "environment", "unknown environment"),
        ({"environment": "dev", "commit_sha": "1" * 40}, 400, "commit_sha", "is not in the"),
        ({"environment": "dev"}, 400, "commit_sha", "required"),
        ({"environment": "dev", "commit_sha": "SHA", "pull_request_url": "x"}, 400, "", "URL"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    author: User,
    infra_repo: Path,
    head_sha: str,
    sent: list[int],
    body: dict[str, str],
    code: int,
    field: str,
    says: str,
) -> None:
    body = {k: head_sha if v == "SHA" else v for k, v in body.items()}
    answer = _request(author, **body)
    assert answer.status_code == code, answer.json()
    text = str(answer.json())
    assert says in text and (not field or field in answer.json())
    assert not SpeculativePlan.objects.exists() and not sent
    assert not AuditEvent.objects.filter(action__startswith="speculative_plan").exists()


@pytest.mark.django_db
def test_only_who_may_file_in_the_environment_may_ask(
    qa: User, outsider: User, author: User, infra_repo: Path, head_sha: str, sent: list[int]
) -> None:
    for user in (qa, outsider):
        answer = _request(user, environment="dev", commit_sha=head_sha)
        assert answer.status_code == 403, answer.json()
        assert "you may not file dev tickets" in answer.json()["detail"]
    assert not SpeculativePlan.objects.exists()
    # A CI-scoped key may: it is how the pull-request workflow asks.
    ci = keyed(new_key(author, scope=ApiKeyScope.CI))
    body = {"environment": "dev", "commit_sha": head_sha}
    answer = ci.post("/api/v1/plans/", body, format="json")
    assert answer.status_code == 202, answer.json()


@pytest.mark.django_db
def test_an_idempotency_key_files_once(
    author: User, infra_repo: Path, head_sha: str, sent: list[int]
) -> None:
    client = api_for(author)
    body = {"environment": "dev", "commit_sha": head_sha, "pull_request_url": PR}
    first = client.post("/api/v1/plans/", body, format="json", HTTP_IDEMPOTENCY_KEY="pr-7-a")
    again = client.post("/api/v1/plans/", body, format="json", HTTP_IDEMPOTENCY_KEY="pr-7-a")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    other = client.post(
        "/api/v1/plans/",
        {**body, "environment": "staging"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="pr-7-a",
    )
    assert other.status_code == 422
    assert SpeculativePlan.objects.count() == 1


@pytest.mark.django_db
def test_plans_are_seen_like_tickets_by_environment(
    author: User,
    operations: User,
    tech_lead: User,
    qa: User,
    infra_repo: Path,
    head_sha: str,
    sent: list[int],
) -> None:
    prod = _request(operations, environment="prod", commit_sha=head_sha).json()
    own = _request(author, environment="prod", commit_sha=head_sha).json()
    dev = _request(author, environment="dev", commit_sha=head_sha).json()
    assert api_for(tech_lead).get(prod["url"]).status_code == 200
    # Prod is seen by operations and the prod leads, and by whoever asked: nobody else.
    assert api_for(author).get(prod["url"]).status_code == 404
    assert api_for(author).get(own["url"]).status_code == 200
    assert api_for(qa).get(prod["url"]).status_code == 404
    assert api_for(qa).get(dev["url"]).status_code == 200
    listed = api_for(author).get("/api/v1/plans/").json()["results"]
    assert [p["id"] for p in listed] == [dev["id"], own["id"]]
    assert "log" not in listed[0]
    only_dev = api_for(author).get("/api/v1/plans/?environment=dev").json()["results"]
    assert [p["id"] for p in only_dev] == [dev["id"]]
    assert api_for(author).get("/api/v1/plans/?environment=a%20b").status_code == 400


@pytest.mark.django_db
def test_nothing_leads_from_a_speculative_plan_to_an_apply(
    author: User, infra_repo: Path, head_sha: str, sent: list[int]
) -> None:
    plan = _request(author, environment="dev", commit_sha=head_sha).json()
    client = api_for(author)
    assert client.post(plan["url"], {}, format="json").status_code == 405
    for verb in ("apply", "deploy", "approve"):
        assert client.post(f"{plan['url']}{verb}/", {}, format="json").status_code == 404
    assert not Ticket.objects.exists()


# --- the log is bounded ------------------------------------------------------------------


def test_the_stored_log_keeps_its_head_and_tail_whatever_terraform_prints() -> None:
    log = plans.BoundedLog()
    for n in range(200_000):
        log(f"line {n} " + "x" * 90)
    log("y" * 100_000)
    text = log.text()
    limit = plans.LOG_HEAD_CHARS + plans.LOG_TAIL_CHARS + 200
    assert len(text) < limit
    assert text.startswith("line 0 ") and "line 199999 " in text
    assert " lines (" in text and "characters) not kept …" in text
    assert text.rstrip("\n").endswith(f"[{100_000 - plans.LINE_MAX_CHARS} more characters cut]")


# --- the reconciler ----------------------------------------------------------------------


@pytest.mark.django_db
def test_lost_plans_are_sent_again_and_stuck_ones_end_interrupted(
    author: User, infra_repo: Path, head_sha: str, sent: list[int], settings: Any
) -> None:
    from deployments import services

    queued = _request(author, environment="dev", commit_sha=head_sha).json()["id"]
    running = _request(author, environment="dev", commit_sha=head_sha).json()["id"]
    sent.clear()
    long_ago = timezone.now() - dt.timedelta(seconds=2 * settings.TERRAFORM_PLAN_TIMEOUT + 120)
    SpeculativePlan.objects.filter(pk=queued).update(created_at=long_ago)
    SpeculativePlan.objects.filter(pk=running).update(
        status=RunStatus.RUNNING, started_at=long_ago, created_at=long_ago
    )
    assert services.runs_reconcile() == {"interrupted": 1, "resent": 1}
    assert sent == [queued]
    stuck = SpeculativePlan.objects.get(pk=running)
    assert (stuck.status, stuck.error) == (RunStatus.INTERRUPTED, "its worker was lost")


# --- on the real Terraform binary -----------------------------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_speculative_plan_plans_with_plan_credentials_and_keeps_no_plan_file(
    author: User, infra_repo: Path, sent: list[int], settings: Any, tmp_path: Path
) -> None:
    path, markers = credentials_file(tmp_path, ("dev",))
    settings.TERRAFORM_CREDENTIALS_FILE = str(path)
    settings.TERRAFORM_BIN = str(probe_terraform(tmp_path))
    Environment.objects.filter(name="dev").update(
        plan_credentials="dev-plan", apply_credentials="dev-apply"
    )
    plan_dir = tmp_path / "plan-storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "plans": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(plan_dir)},
        },
    }
    sha = _branch(infra_repo)
    plan_id = _request(author, environment="dev", commit_sha=sha, pull_request_url=PR).json()["id"]
    plans.speculative_plan_run(plan_id=plan_id, worker="test")
    plans.speculative_plan_run(plan_id=plan_id, worker="test")  # a duplicate finds nothing
    body = api_for(author).get(f"/api/v1/plans/{plan_id}/").json()
    assert body["status"] == "succeeded", body["error"]
    assert body["exit_code"] == 0 and body["has_changes"] is True
    assert body["summary"]["add"] == 24 and body["summary"]["destroy"] == 0
    log = body["log"]
    assert log.startswith(f"Speculative plan (never applied) of commit {sha} in dev")
    assert "Credentials for this plan: credential set dev-plan (CCP_MARKER)" in log
    assert f"marker={sha256_hex(markers['dev-plan'])}" in log
    assert sha256_hex(markers["dev-apply"]) not in log
    assert markers["dev-plan"] not in log
    assert "Plan: 24 to add, 0 to change, 0 to destroy." in log
    # No ticket, no run, no plan file: nothing anyone could approve or apply.
    assert not Ticket.objects.exists() and not TerraformRun.objects.exists()
    assert not plan_dir.exists() or not any(plan_dir.rglob("*"))
    actions = list(
        AuditEvent.objects.filter(action__startswith="speculative_plan")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "speculative_plan.queue",
        "speculative_plan.start",
        "speculative_plan.finish",
    ]


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_failing_plan_fails_with_its_reason(
    author: User, infra_repo: Path, sent: list[int]
) -> None:
    (infra_repo / "terraform" / "broken.tf").write_text('resource "null_resource" {\n')
    sha = commit_all(infra_repo, "broken")
    plan_id = _request(author, environment="dev", commit_sha=sha).json()["id"]
    plans.speculative_plan_run(plan_id=plan_id, worker="test")
    plan = SpeculativePlan.objects.get(pk=plan_id)
    assert plan.status == RunStatus.FAILED and plan.exit_code == 1
    assert plan.error == "terraform init failed" and plan.summary == {}
    assert "error: terraform init failed" in plan.log
