"""``commit_sha`` names a commit (issue 16, hole 11): an annotated tag's SHA is peeled to
its commit (``<sha>^{commit}``) and the commit is recorded; a tree, a blob or an unknown
object is refused with a 400 naming the field. On a real git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deployments.models import AuditEvent, Ticket
from deployments.terraform.source import InfraRepo
from tests.helpers.api import api_for

pytestmark = pytest.mark.django_db


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, check=True, text=True
    )
    return done.stdout.strip()


def _file(author: User, sha: str) -> object:
    return api_for(author).post(
        "/api/v1/tickets/",
        {"title": "tagged release", "environment": "dev", "commit_sha": sha},
        format="json",
    )


def test_an_annotated_tag_is_recorded_as_its_commit(
    author: User, infra_repo: Path, head_sha: str
) -> None:
    _git(infra_repo, "tag", "-a", "v1.0", "-m", "release 1.0")
    tag = _git(infra_repo, "rev-parse", "refs/tags/v1.0")
    assert tag != head_sha and _git(infra_repo, "cat-file", "-t", tag) == "tag"
    response = _file(author, tag)
    assert response.status_code == 201, response.json()  # type: ignore[attr-defined]
    assert response.json()["commit_sha"] == head_sha  # type: ignore[attr-defined]
    ticket = Ticket.objects.get()
    assert ticket.commit_sha == head_sha
    created = AuditEvent.objects.get(ticket=ticket, action="ticket.create")
    assert created.data["commit_sha"] == head_sha and created.data["commit_sha_given"] == tag
    # Its plan is queued for the commit, never for the tag object.
    assert {run.commit_sha for run in ticket.runs.all()} == {head_sha}


@pytest.mark.parametrize("kind", ["tree", "blob", "tag of a tree", "unknown"])
def test_anything_that_is_not_a_commit_is_refused(
    author: User, infra_repo: Path, head_sha: str, kind: str
) -> None:
    if kind == "tree":
        sha = _git(infra_repo, "rev-parse", f"{head_sha}^{{tree}}")
    elif kind == "blob":
        sha = _git(infra_repo, "rev-parse", f"{head_sha}:terraform/main.tf")
    elif kind == "tag of a tree":
        tree = _git(infra_repo, "rev-parse", f"{head_sha}^{{tree}}")
        _git(infra_repo, "tag", "-a", "treetag", tree, "-m", "a tag of a tree")
        sha = _git(infra_repo, "rev-parse", "refs/tags/treetag")
    else:
        sha = "0123456789abcdef0123456789abcdef01234567"
    response = _file(author, sha)
    assert response.status_code == 400, response.json()  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert "commit_sha" in body and "must name a commit" in str(body)
    assert not Ticket.objects.exists()


def test_resolve_commit_peels_and_refuses(infra_repo: Path, head_sha: str) -> None:
    repo = InfraRepo(location=str(infra_repo), cache_dir=infra_repo.parent)
    _git(infra_repo, "tag", "-a", "v2", "-m", "two")
    assert repo.resolve_commit(head_sha) == head_sha
    assert repo.resolve_commit(_git(infra_repo, "rev-parse", "refs/tags/v2")) == head_sha
    assert repo.resolve_commit(_git(infra_repo, "rev-parse", f"{head_sha}^{{tree}}")) is None
    assert repo.resolve_commit("not a sha") is None
