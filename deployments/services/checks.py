"""CI check results on tickets: who may report them, bounded, redacted and audited."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from deployments import policy
from deployments.models import CheckResult
from deployments.selectors import user_roles
from deployments.services._base import InputError, locked_ticket
from deployments.services.audit import audit_record
from deployments.terraform.redact import Redactor, secret_values_from_env

CHECK_SUMMARY_MAX = 2_000
CHECK_LOG_MAX = 256 * 1024  # characters, after redaction the log is cut to this


@dataclass(frozen=True)
class CheckInput:
    """One check result as CI reports it."""

    name: str
    status: str
    summary: str = ""
    url: str = ""
    log: str = ""


def check_record(*, ticket_id: int, actor: Any, data: CheckInput) -> CheckResult:
    """Record a check result on a ticket; those who may file in its environment report."""
    name = data.name.strip().lower()
    if not policy.CHECK_NAME_RE.match(name):
        raise InputError(
            "name", 'name must be a check name: lowercase letters, digits, "-" and "_"'
        )
    if data.status not in ("passed", "failed"):
        raise InputError("status", "status must be passed or failed")
    if data.url and not data.url.lower().startswith(("http://", "https://")):
        raise InputError("url", "url must be an http or https URL")
    if len(data.summary) > CHECK_SUMMARY_MAX:
        raise InputError("summary", f"summary must be at most {CHECK_SUMMARY_MAX} characters")
    if len(data.log) > CHECK_LOG_MAX:
        raise InputError("log", f"log must be at most {CHECK_LOG_MAX} characters")
    redact = Redactor(secret_values_from_env(os.environ))
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        policy.check_may_file(
            ticket.environment, user_roles(actor), superuser=bool(actor.is_superuser)
        )
        result = CheckResult.objects.create(
            ticket=ticket,
            name=name,
            status=data.status,
            summary=redact(data.summary),
            url=data.url,
            log=redact(data.log)[:CHECK_LOG_MAX],
            reported_by=actor,
        )
        audit_record(
            actor=actor,
            action="check.report",
            ticket=ticket,
            data={"check": result.pk, "name": name, "status": data.status},
        )
    return result
