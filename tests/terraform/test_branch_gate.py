"""Dev applies by itself only what `main` holds (issue 17, item 5).

A dev ticket whose commit is reachable from INFRA_BRANCH plans and applies with nobody
asking; one for any other commit (a pushed branch) plans, then waits for one Lead Developer
or Tech Lead, never its author, and says so on its page and in the API. The worker asks git
again when the apply starts: a commit that left `main` meanwhile is not applied unapproved.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import policy, services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Deployment, Environment, Ticket
from deployments.terraform.source import InfraRepo, SourceError, commit_all
from tests.helpers.api import api_for
from tests.helpers.flow import drain
from tests.helpers.tickets import approve


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def branch_commit(repo: Path, branch: str = "feature") -> str:
    """A commit on a branch that is not merged into main (main stays where it was)."""
    _git(repo, "checkout", "-q", "-b", branch)
    (repo / "terraform" / "feature.tf").write_text('locals {\n  feature = "unreviewed"\n}\n')
    sha = commit_all(repo, "Unreviewed change on a branch")
    _git(repo, "checkout", "-q", "main")
    return sha


NOTE = (
    "commit {sha} is not on main: dev applies it only with a lead's approval "
    "(1 approval from a Lead Developer or Tech Lead, not its author)"
)


# --- the ancestry check ---------------------------------------------------------------


def test_is_ancestor_answers_for_commits_on_and_off_the_branch(infra_repo: Path) -> None:
    repo = InfraRepo(location=str(infra_repo), cache_dir=infra_repo.parent)
    first = repo.branch_tip("main")
    second = commit_all(infra_repo, "second")
    off = branch_commit(infra_repo)
    assert repo.is_ancestor(second, "main") is True
    assert repo.is_ancestor(first, "main") is True  # an older commit of main
    assert repo.is_ancestor(off, "main") is False
    assert repo.is_ancestor(off, "feature") is True
    with pytest.raises(SourceError, match="not in the infrastructure repository"):
        repo.is_ancestor("0" * 40, "main")
    with pytest.raises(SourceError, match="no branch 'release'"):
        repo.is_ancestor(second, "release")
    with pytest.raises(SourceError, match="not a 40-hex"):
        repo.is_ancestor("HEAD", "main")


# --- the rule (pure) --------------------------------------------------------------------


def _ticket(env_name: str, *, on_branch: bool | None, author_id: int = 1) -> Ticket:
    env = Environment(
        name=env_name,
        auto_deploy=env_name == "dev",
        approval_rule={} if env_name == "dev" else {"any_of": ["lead_developer"], "count": 1},
        emergency_approval_rule={},
        window_days=[],
    )
    return Ticket(
        environment=env, commit_sha="ab" * 20, author_id=author_id, commit_on_branch=on_branch
    )


def test_only_an_auto_deploy_ticket_off_the_branch_needs_a_lead() -> None:
    assert policy.needs_branch_approval(_ticket("dev", on_branch=False))
    assert not policy.needs_branch_approval(_ticket("dev", on_branch=True))
    assert not policy.needs_branch_approval(_ticket("dev", on_branch=None))
    # Staging already has a lead review every plan: the branch changes nothing there.
    assert not policy.needs_branch_approval(_ticket("staging", on_branch=False))
    off = _ticket("dev", on_branch=False)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert policy.rule_for(off, now=now).roles == {"lead_developer", "tech_lead"}
    assert not policy.rule_for(_ticket("dev", on_branch=True), now=now).required
    assert policy.branch_note(off, "main") == NOTE.format(sha="ab" * 5)
    assert policy.branch_note(_ticket("dev", on_branch=True), "main") == ""


def test_an_off_branch_apply_starts_only_with_a_leads_approval_of_that_plan() -> None:
    ticket = _ticket("dev", on_branch=False, author_id=1)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    start = {"now": now, "plan_sha256": "p" * 64, "current_plan_sha256": "p" * 64}
    with pytest.raises(policy.ApplyRefused) as refused:
        policy.check_apply_may_start(ticket, votes=[], **start)
    assert refused.value.message.startswith(NOTE.format(sha="ab" * 5))
    assert refused.value.back_to == TicketStatus.AWAITING_APPROVAL
    author = policy.Vote(1, "alice", frozenset({"lead_developer"}), "lead_developer")
    with pytest.raises(policy.ApplyRefused):
        policy.check_apply_may_start(ticket, votes=[author], **start)  # never the author
    lead = policy.Vote(2, "lena", frozenset({"lead_developer"}), "lead_developer")
    policy.check_apply_may_start(ticket, votes=[lead], **start)
    policy.check_apply_may_start(_ticket("dev", on_branch=True), votes=[], **start)


# --- end to end on the real Terraform binary -------------------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_dev_ticket_of_an_unmerged_commit_waits_for_a_lead_then_applies(
    author: User,
    developer: User,
    lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    sha = branch_commit(infra_repo)
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "Branch change", "environment": "dev", "commit_sha": sha},
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
    note = NOTE.format(sha=sha[:10])
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert ticket.status_reason == note
    assert ticket.commit_on_branch is False
    assert not ticket.runs.filter(kind=RunKind.APPLY).exists()
    checked = AuditEvent.objects.get(action="ticket.branch_check", ticket=ticket)
    assert checked.data | {"run": 0} == {
        "commit_sha": sha,
        "branch": "main",
        "on_branch": False,
        "was": None,
        "run": 0,
        "checked_at": "plan end",
    }

    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["commit_on_branch"] is False
    assert body["approval_status"]["branch_note"] == note
    assert body["approval_status"]["rule"] == "1 approval from a Lead Developer or Tech Lead"
    assert "approve" not in body["available_actions"]
    page = Client()
    page.force_login(author)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="branch-note"' in html and note.replace("'", "&#x27;")[1:] in html
    assert "not on main" in html

    # Neither its author nor another developer may let it through.
    assert approve(author, ticket).status_code == 403
    assert approve(developer, ticket).status_code == 403
    # A lead's approval applies it, as dev applies its tickets: by itself.
    assert approve(lead, ticket).status_code == 200
    ticket = drain(ticket)
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    apply = ticket.runs.get(kind=RunKind.APPLY)
    assert apply.status == RunStatus.SUCCEEDED


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_commit_that_left_main_before_its_apply_starts_is_not_applied(
    author: User,
    lead: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    sha = commit_all(infra_repo, "Merged, for now")
    filed = api_for(author).post(
        "/api/v1/tickets/", {"title": "Merged change", "environment": "dev"}, format="json"
    )
    assert filed.status_code == 201, filed.json()
    ticket = Ticket.objects.get(pk=filed.json()["id"])
    assert ticket.commit_sha == sha
    services.run_execute(run_id=ticket.runs.get(kind=RunKind.PLAN).pk, worker="test")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPLYING  # on main: dev applies it by itself
    assert ticket.commit_on_branch is True

    # main is rewritten (a force-push) before the worker starts the apply.
    _git(infra_repo, "reset", "-q", "--hard", "HEAD~1")
    apply = ticket.runs.get(kind=RunKind.APPLY)
    services.run_execute(run_id=apply.pk, worker="test")
    apply.refresh_from_db()
    ticket.refresh_from_db()
    note = NOTE.format(sha=sha[:10])
    assert apply.status == RunStatus.CANCELLED
    refused = f"the apply was not started: {note}; no such approval stands for this plan"
    assert apply.error == refused
    assert "$ terraform" not in apply.log
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert ticket.commit_on_branch is False
    assert not Deployment.objects.filter(ticket=ticket).exists()
    left = AuditEvent.objects.filter(action="ticket.branch_check", ticket=ticket).latest("id")
    assert (left.data["was"], left.data["on_branch"], left.data["checked_at"]) == (
        True,
        False,
        "apply start",
    )
    # A lead may still let that exact plan through.
    assert approve(lead, ticket).status_code == 200
    ticket = drain(ticket)
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
