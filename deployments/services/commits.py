"""The commit a plan was made of, as its reviewers read it: message, author and when it
was authored, kept with the plan run's summary (``summary["commit"]``) when the plan ends,
so the ticket page never asks git."""

from __future__ import annotations

import logging

from deployments import terraform as tf
from deployments.models import TerraformRun, Ticket
from deployments.services._base import infra_repo

log = logging.getLogger(__name__)


def commit_record(ticket: Ticket, run: TerraformRun) -> None:
    """An after-plan step: the plan's commit facts onto the run's summary. A repository
    that cannot answer leaves them out (the page shows the SHA alone); part of the run's
    recorded outcome (audited as its ``run.finish``)."""
    try:
        facts = infra_repo().commit_facts(run.commit_sha)
    except tf.SourceError as exc:
        log.warning("cannot read commit %s: %s", run.commit_sha, exc)
        return
    if not facts:
        return
    run.summary = {**(run.summary or {}), "commit": facts}
    run.save(update_fields=["summary"])
