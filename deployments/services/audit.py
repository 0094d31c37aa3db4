"""The append-only, hash-chained audit trail.

Canonical encoding (what ``verify_audit`` recomputes)::

    hash = sha256(json.dumps(
        {"at": at.isoformat(), "actor": actor_name, "actor_id": actor_id,
         "action": action, "ticket": ticket_id, "data": data, "prev": prev_hash},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str,
    ).encode("utf-8")).hexdigest()

i.e. SHA-256 over sorted-key compact JSON of at, actor (name and user id), action,
ticket, data and the previous event's hash (``"0" * 64`` for the first event).
``AuditChainHead.last_hash`` is the hash of the newest event, written in the same
transaction as the event: comparing it with the newest event finds deleted newest
events, and the head's row lock is the one writer order that keeps the chain linear.

Without a secret the chain proves order and completeness against edits made beside
the portal, not against someone who rewrites every later hash and the head too;
record the head that ``verify_audit`` prints somewhere else to anchor it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from deployments.models import AuditChainHead, AuditEvent, Ticket

GENESIS_HASH = "0" * 64
# Rows fetched per round trip while verifying: memory stays flat however long the chain.
VERIFY_CHUNK = 5000

_FIELDS = (
    "id",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "ticket_id",
    "data",
    "prev_hash",
    "hash",
)


def canonical_hash(
    *,
    at: dt.datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    ticket_id: int | None,
    data: Any,
    prev_hash: str,
) -> str:
    """The hash of one event in the canonical encoding described in the module docstring."""
    blob = json.dumps(
        {
            "at": at.isoformat(),
            "actor": actor_name,
            "actor_id": actor_id,
            "action": action,
            "ticket": ticket_id,
            "data": data,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def event_hash(event: AuditEvent) -> str:
    """The hash an event should carry, recomputed from its stored fields."""
    return canonical_hash(
        at=event.at,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        ticket_id=event.ticket_id,
        data=event.data,
        prev_hash=event.prev_hash,
    )


def audit_record(
    *, actor: Any, action: str, ticket: Ticket | None = None, data: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an event to the hash chain; must run inside the caller's transaction."""
    # The head row lock serialises every append until the caller commits, so ids,
    # timestamps and prev links all follow one order (no forks under concurrency).
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    user = actor if getattr(actor, "pk", None) else None
    event = AuditEvent(
        at=timezone.now(),
        actor=user,
        actor_name=user.get_username() if user else str(actor or "system"),
        action=action,
        ticket=ticket,
        data=data or {},
        prev_hash=head.last_hash,
    )
    event.hash = event_hash(event)
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


@dataclass(frozen=True)
class AuditReport:
    """The outcome of walking the chain: intact, or the first bad event and what is wrong."""

    ok: bool
    count: int
    message: str
    bad_event_id: int | None = None
    head: str = GENESIS_HASH


def _walk(after_id: int, prev: str, count: int) -> tuple[AuditReport | None, int, str, int, str]:
    """Check events with id > after_id in id order, streaming; stop at the first bad one.

    Returns (failure or None, last id, last hash, count, last action).
    """
    last_id, last_action = after_id, ""
    rows = (
        AuditEvent.objects.filter(id__gt=after_id)
        .order_by("id")
        .values_list(*_FIELDS)
        .iterator(chunk_size=VERIFY_CHUNK)
    )
    for pk, at, actor_id, actor_name, action, ticket_id, data, prev_hash, stored in rows:
        if prev_hash != prev:
            if count == 0:
                what = (
                    "is the oldest event but does not start the chain: "
                    "earlier events were deleted or its link was edited"
                )
            else:
                what = (
                    f"does not link to event {last_id} before it: an event between them was "
                    "deleted or inserted, the events were reordered, or its link was edited"
                )
            return AuditReport(False, count, f"event {pk} ({action}) {what}", pk), 0, "", 0, ""
        computed = canonical_hash(
            at=at,
            actor_id=actor_id,
            actor_name=actor_name,
            action=action,
            ticket_id=ticket_id,
            data=data,
            prev_hash=prev_hash,
        )
        if computed != stored:
            message = f"event {pk} ({action}) was altered: its stored fields do not match its hash"
            return AuditReport(False, count, message, pk), 0, "", 0, ""
        prev, last_id, last_action = stored, pk, action
        count += 1
    return None, last_id, prev, count, last_action


def audit_check() -> AuditReport:
    """Walk the chain oldest first and compare its end with the chain head."""
    prev, last_id, count, last_action = GENESIS_HASH, 0, 0, ""
    head: str | None = None
    # Events appended while we walk are picked up by walking again from where we
    # stopped: the head is read after the events it must match, never before.
    for _ in range(1000):
        failure, new_last_id, new_prev, new_count, action = _walk(last_id, prev, count)
        if failure is not None:
            return failure
        progressed = new_last_id != last_id
        if progressed:
            last_id, prev, count, last_action = new_last_id, new_prev, new_count, action
        head = AuditChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()
        if head is None or head == prev or not progressed:
            break
    if head is None:
        if count == 0:
            return AuditReport(True, 0, "0 events, chain intact")
        return AuditReport(
            False,
            count,
            f"event {last_id} ({last_action}) is the newest event but the chain head is "
            "missing: the head row was deleted",
            last_id,
        )
    if head == prev:
        return AuditReport(True, count, f"{count} events, chain intact; head {head}", head=head)
    if count == 0:
        return AuditReport(
            False,
            0,
            f"no events, but the chain head names event hash {head}: the audit trail was emptied",
            head=head,
        )
    anchor = AuditEvent.objects.filter(hash=head).values_list("id", "action").first()
    if anchor is not None and anchor[0] < last_id:
        extra = (
            AuditEvent.objects.filter(id__gt=anchor[0]).order_by("id").values_list("id", "action")
        ).first()
        assert extra is not None
        return AuditReport(
            False,
            count,
            f"event {extra[0]} ({extra[1]}) comes after the chain head (event {anchor[0]}): "
            "it was inserted without going through the chain head",
            extra[0],
            head=head,
        )
    return AuditReport(
        False,
        count,
        f"event {last_id} ({last_action}) is the newest event but the chain head names "
        f"hash {head}: newer events were deleted",
        last_id,
        head=head,
    )


def audit_verify() -> tuple[bool, str]:
    """Verify the chain: (True, summary) or (False, the first bad event and what is wrong)."""
    report = audit_check()
    return report.ok, report.message


# --- tickets -----------------------------------------------------------------------
