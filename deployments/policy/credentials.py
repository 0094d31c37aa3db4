"""Credentials per environment and phase (issue 17): which runs are plan-phase (read-only
credentials) and which apply; what a credential set name and a role ARN look like; how a run's
STS session is named and how long it lasts."""

from __future__ import annotations

import re
from typing import Any

# An environment names the credential set (a name in the worker's TERRAFORM_CREDENTIALS_FILE)
# and/or the AWS role its plans get, and those its applies get. Plans, post-apply checks,
# drift checks and speculative plans are plan-phase runs (read-only credentials); only an
# apply gets the apply credentials.

PLAN_PHASE = "plan"
APPLY_PHASE = "apply"
CREDENTIAL_SET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# arn:<partition>:iam::<account>:role/<path/><name> (IAM's own limits on path and name).
ROLE_ARN_RE = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/(?:[\w+=,.@-]+/){0,64}[\w+=,.@-]{1,64}$"
)
ROLE_ARN_MAX = 2048
# STS: RoleSessionName is 2 to 64 characters of [\w+=,.@-].
_SESSION_NAME_MAX = 64
_SESSION_UNSAFE = re.compile(r"[^\w+=,.@-]")
# STS's shortest session; a run's session lasts its timeout plus this margin.
ROLE_SESSION_MIN_SECONDS = 900
ROLE_SESSION_MARGIN_SECONDS = 300


def run_phase(kind: str) -> str:
    """The credentials phase of a run kind: only an apply writes."""
    return APPLY_PHASE if kind == "apply" else PLAN_PHASE


def credential_set_problem(value: Any) -> str | None:
    """Why a credential set name is not usable, or None ("" means none)."""
    if value == "":
        return None
    if not isinstance(value, str) or not CREDENTIAL_SET_RE.match(value):
        return (
            "a credential set name is 1 to 64 letters, digits, '.', '_' or '-' (a key of the "
            "workers' TERRAFORM_CREDENTIALS_FILE), e.g. prod-plan"
        )
    return None


def role_arn_problem(value: Any) -> str | None:
    """Why an IAM role ARN is not one, or None ("" means none)."""
    if value == "":
        return None
    if not isinstance(value, str) or len(value) > ROLE_ARN_MAX or not ROLE_ARN_RE.match(value):
        return (
            "must be an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>, e.g. "
            "arn:aws:iam::123456789012:role/prod-plan"
        )
    return None


def role_session_name(subject: str, phase: str) -> str:
    """The RoleSessionName of a run's session, naming what runs (``t123-r456``: ticket and
    run) and its phase: ``ccp-t123-r456-plan``, shown in CloudTrail beside every call."""
    room = _SESSION_NAME_MAX - len("ccp-") - len(phase) - 1
    subject = _SESSION_UNSAFE.sub("-", subject)[:room]
    return f"ccp-{subject}-{phase}"


def role_session_seconds(timeout: int, cap: int) -> int:
    """How long a run's role session lasts: long enough for its phase's timeout, capped."""
    wanted = max(ROLE_SESSION_MIN_SECONDS, timeout + ROLE_SESSION_MARGIN_SECONDS)
    return min(wanted, max(cap, ROLE_SESSION_MIN_SECONDS))
