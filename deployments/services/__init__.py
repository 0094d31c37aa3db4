"""Every write in the portal: one transaction, rule check, write, audit, on-commit dispatch.

Split by noun: tickets (filing, planning, cancelling), approvals (approve, reject,
deploy), runs/ (the run pipeline: start, spec, claim, execute, log stream, outcome,
reconcile), lifecycle (the steps after a plan, an apply, a check), notices (what people
are told), audit, and one module per capability (schedules, evidence, monitoring, ...).

Lock order, everywhere: ticket → run → audit chain head. A service that changes a run
and its ticket locks the ticket first (``locked_ticket``, which on PostgreSQL also locks
the ticket's environment row through ``select_related``), then the run
(``select_for_update`` or a guarded ``update``), and appends to the audit trail last
(``audit_record`` locks the chain head). Never lock a run and then its ticket: a cancel
landing while a plan finishes would deadlock, and PostgreSQL would abort one of them.
Writes that touch only a run (log chunks, heartbeats, claims of plans) lock just the run.
The environment lock of an apply (``deployments.lib.locks``) is not a row lock: it is taken
before any of these, outside transactions, and held for the apply's whole duration.
"""

from deployments.services import notices, webhooks
from deployments.services._base import InputError, infra_repo, locked_ticket, transition
from deployments.services.approvals import (
    approval_grant,
    ticket_deploy,
    ticket_reject,
)
from deployments.services.audit import GENESIS_HASH, audit_record, audit_verify
from deployments.services.checks import CheckInput, check_record
from deployments.services.evidence import (
    evidence_purge,
    evidence_sign_off,
    evidence_upload,
    evidence_withdraw,
)
from deployments.services.followups import follow_up_complete, follow_up_open, follow_ups_remind
from deployments.services.monitoring import (
    alarm_acknowledge,
    checklist_sign,
    monitoring_poll,
    ticket_complete,
)
from deployments.services.rollbacks import rollback_deployed, rollback_open
from deployments.services.runs import (
    apply_start,
    check_start,
    environment_release,
    plan_start,
    run_dispatch,
    run_execute,
    run_finish,
    run_interrupt,
    runs_reconcile,
)
from deployments.services.tickets import TicketInput, ticket_cancel, ticket_create, ticket_plan

__all__ = [
    "GENESIS_HASH",
    "CheckInput",
    "InputError",
    "TicketInput",
    "alarm_acknowledge",
    "apply_start",
    "approval_grant",
    "audit_record",
    "audit_verify",
    "check_record",
    "check_start",
    "checklist_sign",
    "environment_release",
    "evidence_purge",
    "evidence_sign_off",
    "evidence_upload",
    "evidence_withdraw",
    "follow_up_complete",
    "follow_up_open",
    "follow_ups_remind",
    "infra_repo",
    "locked_ticket",
    "monitoring_poll",
    "notices",
    "plan_start",
    "rollback_deployed",
    "rollback_open",
    "run_dispatch",
    "run_execute",
    "run_finish",
    "run_interrupt",
    "runs_reconcile",
    "ticket_cancel",
    "ticket_complete",
    "ticket_create",
    "ticket_deploy",
    "ticket_plan",
    "ticket_reject",
    "transition",
    "webhooks",
]
