"""Testing evidence, QA's sign-off and the promotion gate (a prod commit validated in
staging first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deployments.choices import TicketStatus
from deployments.lib.presentation import file_size
from deployments.policy.errors import PolicyError
from deployments.policy.roles import (
    QA_ROLE,
)

if TYPE_CHECKING:
    from deployments.models import Ticket


#
# Who may do what with evidence (SPEC §5 "Only QA may upload qa_report or sign evidence off
# as passed"): anyone who can see a ticket may attach screenshots, smoke-test results and
# other files to it, unreviewed or as failed (CI reports a red smoke-test run itself); only
# QA uploads a qa_report, and only QA gives a verdict of passed, at upload or by signing an
# item off. A sign-off is given once per item: a new verdict needs a new upload.
#
# When evidence is taken (issue 16): while the ticket can still use it. Before and while it
# deploys (evidence may be prepared ahead; a verdict counts only once given after the apply
# it validates, see verdict_counts), while it is monitoring (QA's window) and after a failed
# apply (what went wrong, before it is planned again). Not once it is completed (its
# evidence is part of its record and, in staging, the promotion gate's proof), cancelled or
# rejected (it will never deploy) or rolled back (its post-mortem says what happened).
# Quotas bound what one ticket and one person may store; an uploader or QA may withdraw a
# file the ticket has not finished with (its verdict stops counting at once; the bytes stay
# until EVIDENCE_WITHDRAWN_RETENTION_DAYS have passed).


# The passed evidence that completes a staging ticket and lets its commit go to prod.
SIGNOFF_KINDS = ("smoke_tests", "qa_report")


SIGNOFF_KIND_LABELS = {"smoke_tests": "passed smoke_tests", "qa_report": "passed qa_report"}


EVIDENCE_CLOSED_STATUSES = {
    TicketStatus.COMPLETED: "it is completed: its evidence is part of its record",
    TicketStatus.CANCELLED: "it was cancelled and will never deploy",
    TicketStatus.REJECTED: "it was rejected and will never deploy",
    TicketStatus.ROLLED_BACK: "it was rolled back: its post-mortem records what happened",
}


_NO_EVIDENCE_STATUSES = frozenset(EVIDENCE_CLOSED_STATUSES)


# A withdrawn file is one the ticket has not finished with: not once it is completed or
# rolled back (the record of a finished change keeps its evidence).
_EVIDENCE_KEPT_STATUSES = frozenset({TicketStatus.COMPLETED, TicketStatus.ROLLED_BACK})


def _evidence_closed(status: TicketStatus, what: str) -> PolicyError:
    return PolicyError(
        f"a ticket that is {status.label.lower()} takes no more {what}: "
        f"{EVIDENCE_CLOSED_STATUSES[status]}"
    )


@dataclass(frozen=True)
class EvidenceUse:
    """What the quotas count (withdrawn files never count)."""

    ticket_files: int
    ticket_bytes: int
    user_bytes_today: int  # the uploader's, across tickets, in the last 24 hours


@dataclass(frozen=True)
class EvidenceQuota:
    ticket_files: int
    ticket_bytes: int
    user_daily_bytes: int


def check_evidence_quota(use: EvidenceUse, size: int, quota: EvidenceQuota) -> None:
    """Would one more file of ``size`` bytes exceed a quota? Refused (409) naming it."""
    if use.ticket_files + 1 > quota.ticket_files:
        raise PolicyError(
            f"this ticket already holds {use.ticket_files} evidence files, its quota "
            f"(EVIDENCE_TICKET_MAX_FILES = {quota.ticket_files}); withdraw one it no longer "
            "needs first"
        )
    if use.ticket_bytes + size > quota.ticket_bytes:
        raise PolicyError(
            f"this file ({file_size(size)}) would take the ticket's evidence to "
            f"{file_size(use.ticket_bytes + size)}, over its quota of "
            f"{file_size(quota.ticket_bytes)} "
            "(EVIDENCE_TICKET_MAX_BYTES); withdraw files it no longer needs first"
        )
    if use.user_bytes_today + size > quota.user_daily_bytes:
        raise PolicyError(
            f"you uploaded {file_size(use.user_bytes_today)} of evidence in the last 24 hours; "
            f"this file ({file_size(size)}) would pass your quota of "
            f"{file_size(quota.user_daily_bytes)} a day (EVIDENCE_USER_DAILY_BYTES)"
        )


def check_may_withdraw_evidence(
    ticket: Ticket,
    *,
    user_id: int,
    user_roles: Iterable[str],
    uploaded_by_id: int,
    withdrawn: bool,
) -> None:
    """May this person withdraw the file? Its uploader or QA, once, while the ticket has not
    finished with it (not completed, not rolled back)."""
    if user_id != uploaded_by_id and QA_ROLE not in set(user_roles):
        raise PolicyError(
            "only the person who uploaded a file, or QA, may withdraw it", PolicyError.ACTOR
        )
    if withdrawn:
        raise PolicyError("this file is already withdrawn")
    status = TicketStatus(ticket.status)
    if status in _EVIDENCE_KEPT_STATUSES:
        raise PolicyError(
            f"a ticket that is {status.label.lower()} keeps its evidence: "
            f"{EVIDENCE_CLOSED_STATUSES[status]}"
        )


def verdict_counts(at: dt.datetime, applied_at: dt.datetime | None) -> bool:
    """Does a verdict given at ``at`` count for the ticket's sign-off? Only one given after
    the apply it validates finished (``applied_at``, the ticket's latest successful apply):
    a verdict from before speaks of a state that was not deployed yet."""
    return applied_at is not None and at >= applied_at


CI_KEY_VERDICT_REFUSAL = (
    "a verdict of passed is a person's act, and this API key has scope 'ci': upload the "
    "evidence without a verdict (or as failed) and QA signs it off on the ticket page or "
    "with a key of scope 'full'"
)


def check_verdict_by_person(*, passed: bool | None, ci_key: bool) -> None:
    """QA's pass is given by a person: never through a key scoped to CI (403)."""
    if passed is True and ci_key:
        raise PolicyError(CI_KEY_VERDICT_REFUSAL, PolicyError.ACTOR)


def check_may_upload_evidence(
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    kind: str,
    passed: bool | None,
    ci_key: bool = False,
) -> None:
    """May someone who can see the ticket attach evidence of this kind and verdict?
    ``ci_key``: the request came with an API key of scope ``ci`` (a machine, not QA)."""
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise _evidence_closed(status, "evidence")
    check_verdict_by_person(passed=passed, ci_key=ci_key)
    is_qa = QA_ROLE in set(user_roles)
    if kind == "qa_report" and not is_qa:
        raise PolicyError("only QA may upload a qa_report", PolicyError.ACTOR)
    if passed is True and not is_qa:
        raise PolicyError(
            "only QA may mark evidence passed; upload it without a verdict (or as failed) "
            "and QA signs it off",
            PolicyError.ACTOR,
        )


def check_may_sign_off(
    ticket: Ticket,
    *,
    user_roles: Iterable[str],
    signed_off_by: str = "",
    verdict: bool | None = None,
    reported_by: str = "",
    ci_key: bool = False,
) -> None:
    """May this person give an item its QA verdict? QA only, once per item: an item that
    already carries a verdict (a failure CI reported at upload) keeps it; a new verdict
    needs new evidence. Never through a key scoped to CI."""
    if ci_key:
        raise PolicyError(
            "a sign-off is a person's act, and this API key has scope 'ci': QA signs evidence "
            "off on the ticket page or with a key of scope 'full'",
            PolicyError.ACTOR,
        )
    if QA_ROLE not in set(user_roles):
        raise PolicyError("only QA may sign evidence off", PolicyError.ACTOR)
    status = TicketStatus(ticket.status)
    if status in _NO_EVIDENCE_STATUSES:
        raise _evidence_closed(status, "sign-offs")
    if signed_off_by:
        raise PolicyError(
            f"{signed_off_by} already signed this evidence off; upload new evidence for a new "
            "verdict"
        )
    if verdict is not None:
        raise PolicyError(
            f"{reported_by or 'its uploader'} already reported this evidence "
            f"{'passed' if verdict else 'failed'}; upload new evidence for a new verdict"
        )


@dataclass(frozen=True)
class Verdict:
    """One item's verdict, as far as sign-off cares (in the order the verdicts were given)."""

    kind: str
    passed: bool | None
    filename: str = ""


def signoff_missing(verdicts: Sequence[Verdict]) -> tuple[str, ...]:
    """What a staging ticket still lacks before QA's sign-off completes it: for each of
    smoke_tests and qa_report, the latest verdict given must be a pass. Pure; ordered."""
    latest: dict[str, bool] = {}
    for verdict in verdicts:
        if verdict.passed is not None:
            latest[verdict.kind] = verdict.passed
    return tuple(SIGNOFF_KIND_LABELS[k] for k in SIGNOFF_KINDS if latest.get(k) is not True)


def failed_smoke_tests(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The failed smoke-test run that still stands (no later pass), if any."""
    standing: Verdict | None = None
    for verdict in verdicts:
        if verdict.kind == "smoke_tests" and verdict.passed is not None:
            standing = None if verdict.passed else verdict
    return standing


def completes_on_signoff(ticket: Ticket) -> bool:
    """Is this a ticket that QA's sign-off completes (staging, after its apply)?"""
    return bool(ticket.environment.requires_qa_signoff) and ticket.status == TicketStatus.MONITORING


@dataclass(frozen=True)
class StagingEvidence:
    """A staging ticket as the promotion gate sees it."""

    ticket_id: int
    url: str
    status: str
    commit_sha: str
    missing: tuple[str, ...]  # what its evidence lacks (signoff_missing)

    @property
    def validated(self) -> bool:
        return self.status == TicketStatus.COMPLETED and not self.missing


def promotion_applies(ticket: Ticket) -> bool:
    """The gate guards normal changes to environments that ask for staging evidence (prod);
    emergencies and rollbacks skip it (SPEC §1)."""
    return bool(ticket.environment.requires_staging_evidence) and ticket.change_type == "normal"


def check_promotion(
    ticket: Ticket,
    staging: StagingEvidence | None,
    *,
    validated_elsewhere: StagingEvidence | None = None,
) -> None:
    """May the ticket be approved as a promotion? Its commit needs a completed staging ticket
    with passed QA evidence. ``staging`` is the staging ticket of the same commit (None when
    there is none); ``validated_elsewhere`` the latest validated staging ticket of another
    commit, named in the refusal so nobody approves a commit QA never saw."""
    if not promotion_applies(ticket):
        return
    env = ticket.environment.name
    short = ticket.commit_sha[:10]
    if staging is None:
        other = ""
        if validated_elsewhere is not None:
            other = (
                f"; staging validated commit {validated_elsewhere.commit_sha[:10]} "
                f"(ticket #{validated_elsewhere.ticket_id}, {validated_elsewhere.url}), "
                "not this one"
            )
        raise PolicyError(
            f"{env} needs commit {short} validated in staging first: no staging ticket of "
            f"this commit exists{other}; file one, deploy it and have QA sign it off "
            "(passed smoke_tests and qa_report)"
        )
    if staging.validated:
        return
    if staging.status != TicketStatus.COMPLETED:
        state = TicketStatus(staging.status).label.lower()
        needs = f"; it still needs {' and '.join(staging.missing)}" if staging.missing else ""
        raise PolicyError(
            f"{env} needs commit {short} validated in staging first: staging ticket "
            f"#{staging.ticket_id} ({staging.url}) is {state}, not completed{needs}"
        )
    raise PolicyError(
        f"{env} needs commit {short} validated in staging first: staging ticket "
        f"#{staging.ticket_id} ({staging.url}) is completed but lacks "
        f"{' and '.join(staging.missing)} evidence"
    )
