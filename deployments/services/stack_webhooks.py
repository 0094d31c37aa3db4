"""Pushes and stacks (docs/stacks.md): which repositories the portal hears from (each with its
own webhook secret, named by an environment variable), and which stacks a push changed: a
stack's root or a local module it calls, from the push's commits' added, modified and
removed files."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from deployments import terraform as tf
from deployments.models import Stack
from deployments.services.stacks import stack_branch, stack_repo, stack_root
from deployments.terraform.configuration import local_module_dirs

_GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")
# GitHub lists at most this many commits in a push; a push of more lists only some.
GITHUB_PUSH_COMMITS = 20
# A delivery keeps at most this many changed folders (past it: every stack counts as changed).
MAX_CHANGED_DIRS = 200


def github_name(stack: Stack) -> str:
    """owner/name of the stack's GitHub repository: from its web URL; a stack in the portal's
    own repository (no repository of its own) is GITHUB_REPOSITORY's."""
    match = _GITHUB.match(stack.web_url or "")
    if match:
        return match.group(1).lower()
    if not stack.repository:
        return str(settings.GITHUB_REPOSITORY or "").lower()
    return ""


def repository_secrets() -> list[tuple[str, str]]:
    """(owner/name, secret) of each repository whose stacks name a secret of their own (the
    values read from the process environment now, never stored)."""
    found: dict[str, str] = {}
    for stack in Stack.objects.exclude(webhook_secret_env="").order_by("name"):
        name, secret = github_name(stack), os.environ.get(stack.webhook_secret_env, "")
        if name and secret:
            found.setdefault(name, secret)
    return sorted(found.items())


def secret_problem(payload: dict[str, Any], signed_by: str) -> str:
    """Why the delivery may not be read as its repository's, or "": a delivery signed with a
    repository's own secret must come from that repository (``signed_by`` is its
    owner/name; "" when GITHUB_WEBHOOK_SECRET signed it, which a repository with a secret
    of its own may not use)."""
    repository = payload.get("repository")
    repository = repository if isinstance(repository, dict) else {}
    name = str(repository.get("full_name") or "").lower()
    own = dict(repository_secrets())
    if signed_by:
        if name != signed_by:
            return (
                f"signed with the webhook secret of {signed_by}, but from {name or 'no repository'}"
            )
        return ""
    if name in own:
        return f"{name} has a webhook secret of its own; this delivery is not signed with it"
    return ""


def repository_stacks(full_name: str) -> list[Stack]:
    """The stacks of one GitHub repository (owner/name, any case)."""
    name = (full_name or "").lower()
    return [s for s in Stack.objects.order_by("name") if name and github_name(s) == name]


def is_stack_repository(full_name: str) -> bool:
    """A repository other than GITHUB_REPOSITORY that some stack lives in."""
    return bool(repository_stacks(full_name))


def changed_dirs(payload: dict[str, Any]) -> list[str] | None:
    """The folders holding the files the push's commits added, modified or removed ("" for
    the repository's top), or None when that list is not whole: GitHub cut the commits, the
    reader cut the files, or there are too many folders to keep."""
    files = payload.get("changed_files")
    commits = payload.get("commit_count") or 0
    if (
        not isinstance(files, list)
        or payload.get("changed_files_truncated")
        or not 0 < commits < GITHUB_PUSH_COMMITS
    ):
        return None
    dirs = sorted({str(f).rpartition("/")[0] for f in files if isinstance(f, str)})
    return dirs if len(dirs) <= MAX_CHANGED_DIRS else None


@dataclass(frozen=True)
class Touched:
    stack: Stack
    why: str


def _watched_dirs(stack: Stack, sha: str) -> list[str]:
    """The stack's root and every local module it calls at ``sha``, relative to the
    repository's top."""
    root = stack_root(stack)
    with tempfile.TemporaryDirectory(prefix="ccp-push-") as tmp:
        tree = Path(tmp)
        exported = stack_repo(stack).export(sha, root, tree)
        dirs = [root.strip("/")]
        for module in local_module_dirs(exported, tree):
            dirs.append(module.resolve().relative_to(tree.resolve()).as_posix())
    return sorted(set(dirs))


def stacks_touched(stacks: list[Stack], sha: str, changed: list[str] | None) -> list[Touched]:
    """Which of ``stacks`` the push changed: a stack whose root or local modules hold one of
    the ``changed`` folders (changed_dirs). When that list is not whole (None), every stack
    counts as changed; a stack whose root is missing at the commit does not."""
    touched: list[Touched] = []
    for stack in stacks:
        if changed is None:
            touched.append(Touched(stack, "the push's list of changed files is incomplete"))
            continue
        try:
            dirs = _watched_dirs(stack, sha)
        except tf.SourceError:
            continue
        hits = sorted(f for f in changed if any(f == d or f.startswith(f"{d}/") for d in dirs if d))
        if hits:
            touched.append(Touched(stack, f"changed in {', '.join(hits[:3])}"))
    return touched


def branch_stacks(stacks: list[Stack], ref: str) -> list[Stack]:
    """The stacks whose protected branch ``ref`` (refs/heads/<branch>) is."""
    return [s for s in stacks if ref == f"refs/heads/{stack_branch(s)}"]
