"""Where a run's commit is (issue 17): an environment that applies by itself (dev) applies
only what the protected branch (INFRA_BRANCH) holds; the answer is kept on the ticket
(``commit_on_branch``) when a plan ends and asked again when its apply would start."""

from __future__ import annotations

import logging

from django.conf import settings

from deployments import policy
from deployments import terraform as tf
from deployments.models import Environment, TerraformRun, Ticket
from deployments.services._base import infra_repo
from deployments.services.audit import audit_record

log = logging.getLogger(__name__)


def branch_check(env: Environment, commit_sha: str) -> bool | None:
    """Is ``commit_sha`` on INFRA_BRANCH? Asked only for an environment that applies by
    itself (None elsewhere: nothing depends on it). A repository that cannot answer counts
    as "no": the ticket waits for a lead rather than applying unchecked."""
    if not policy.auto_deploys(env):
        return None
    try:
        return infra_repo().is_ancestor(commit_sha, settings.INFRA_BRANCH)
    except tf.SourceError as exc:
        log.warning("cannot tell whether %s is on %s: %s", commit_sha, settings.INFRA_BRANCH, exc)
        return False


def branch_record(
    ticket: Ticket, on_branch: bool | None, *, run: TerraformRun, moment: str
) -> None:
    """Keep the latest answer of branch_check on the (locked) ticket; a change is audited."""
    if on_branch is None or ticket.commit_on_branch is on_branch:
        return
    before = ticket.commit_on_branch
    ticket.commit_on_branch = on_branch
    ticket.save(update_fields=["commit_on_branch", "updated_at"])
    audit_record(
        actor="worker",
        action="ticket.branch_check",
        ticket=ticket,
        data={
            "commit_sha": ticket.commit_sha,
            "branch": settings.INFRA_BRANCH,
            "on_branch": on_branch,
            "was": before,
            "run": run.pk,
            "checked_at": moment,
        },
    )
