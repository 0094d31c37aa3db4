"""The audit trail as its readers see it (page, API, the ticket's history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import In

from deployments import policy
from deployments.lib.validation import (
    STACK_NAME,
    InputError,
    parse_instant,
    text_problem,
)
from deployments.models import (
    AuditEvent,
    Deployment,
    Stack,
    Ticket,
)
from deployments.selectors.access import (
    is_superuser,
    user_roles,
    visible_q,
)
from deployments.selectors.stacks import stack_names


def audit_for_ticket(ticket: Ticket) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(ticket=ticket).select_related("actor").order_by("id")


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page and API filter on (parsed and checked by the caller)."""

    ticket: int | None = None
    actor: str = ""
    # Exact, or a prefix when it ends with "*" or "." ("ticket.*", "approval.").
    action: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    # A stack's trail (stack_events_q); the caller has checked that it exists.
    stack: Stack | None = None


def stack_events_q(stack: Stack) -> Q:
    """The events of one stack, as one condition (no query of its own):

    - every event of its tickets (runs, approvals, deployments, rollbacks: all of them
      name their ticket);
    - the events about the stack itself, whose data names it: its declaration and changes
      (``stack.create``, ``stack.update``) and its run triggers (``stack.trigger``, and
      ``stack.trigger_failed``, which is also in the upstream ticket's trail);
    - drift found in one of its deployments (``drift.detected`` names no ticket, only the
      deployment: matched as text, a subquery of the stack's deployments)."""
    deployments = (
        Deployment.objects.filter(stack=stack)
        .order_by()
        .annotate(key=Cast("pk", output_field=CharField()))
        .values("key")
    )
    drift_of_its_deployments: In[Any] = In(KeyTextTransform("deployment", "data"), deployments)
    return (
        Q(ticket__stack=stack)
        | Q(action__startswith="stack.", data__stack=stack.name)
        | (Q(action="drift.detected", ticket__isnull=True) & Q(drift_of_its_deployments))
    )


def may_read_audit(user: Any) -> bool:
    return policy.can_read_audit(user_roles(user), staff=_is_staff(user))


def _is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False) or is_superuser(user))


def audit_events(user: Any, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events the user may read, newest first: raises PolicyError (actor) for those
    who may not read the trail; events of tickets they may not see are left out (a
    lead developer sees no prod ticket's events), events of no ticket are shown."""
    policy.check_may_read_audit(user_roles(user), staff=_is_staff(user))
    events = AuditEvent.objects.all()
    if not is_superuser(user):
        events = events.filter(Q(ticket__isnull=True) | visible_q(user, "ticket__"))
    if filters.ticket is not None:
        events = events.filter(ticket_id=filters.ticket)
    if filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.action.endswith(("*", ".")):
        events = events.filter(action__startswith=filters.action.rstrip("*"))
    elif filters.action:
        events = events.filter(action=filters.action)
    if filters.stack is not None:
        events = events.filter(stack_events_q(filters.stack))
    if filters.since is not None:
        events = events.filter(at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(at__lt=filters.until)
    return events.order_by("-id")


# What the page's form and the API's query parameters may say (selectors.audit_filters).
AUDIT_FILTER_TEXT_MAX = 150
_AUDIT_ID_MAX = 10**12


def audit_filters(params: Any, *, blank_is_absent: bool = True) -> AuditFilters:
    """AuditFilters from query parameters; InputError names the bad one.

    A page's form sends its empty fields (blank means "any"); the API, whose contract
    types ticket as an integer and since/until as date-times, refuses them blank."""
    if not blank_is_absent:
        for name in ("ticket", "since", "until"):
            if name in params and not (params.get(name) or "").strip():
                raise InputError(name, "must not be empty (leave the parameter out for any)")
    values: dict[str, Any] = {}
    raw_ticket = (params.get("ticket") or "").strip().lstrip("#")
    if raw_ticket:
        if not raw_ticket.isascii() or not raw_ticket.isdigit() or int(raw_ticket) > _AUDIT_ID_MAX:
            raise InputError("ticket", "must be a ticket number")
        values["ticket"] = int(raw_ticket)
    for name in ("actor", "action"):
        text = (params.get(name) or "").strip()
        if len(text) > AUDIT_FILTER_TEXT_MAX or text_problem(text):
            raise InputError(name, f"must be at most {AUDIT_FILTER_TEXT_MAX} plain characters")
        values[name] = text
    for name in ("since", "until"):
        raw = params.get(name) or ""
        if raw.strip():
            values[name] = parse_instant(raw, name)
    if "since" in values and "until" in values and values["since"] >= values["until"]:
        raise InputError("until", "must be after since")
    stack = params.get("stack") or ""  # not stripped: " app" is no stack name (400)
    if stack:
        found = Stack.objects.filter(name=stack).first() if STACK_NAME.fullmatch(stack) else None
        if found is None:
            names = ", ".join(stack_names()) or "none"
            raise InputError("stack", f"no such stack (one of: {names})")
        values["stack"] = found
    return AuditFilters(**values)
