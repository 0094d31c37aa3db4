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
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deployments.lib import changes
from deployments.models import AuditChainHead, AuditEvent, AuditVerification, Ticket

GENESIS_HASH = "0" * 64
# Rows fetched per round trip while verifying: memory stays flat however long the chain.
VERIFY_CHUNK = 5000

# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str),
# built once: verification hashes every event.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


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
    blob = _ENCODER.encode(
        {
            "at": at.isoformat(),
            "actor": actor_name,
            "actor_id": actor_id,
            "action": action,
            "ticket": ticket_id,
            "data": data,
            "prev": prev_hash,
        }
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
    if ticket is not None:  # a ticket moved: the nav badges are recounted (pages.home)
        transaction.on_commit(changes.note_write)
    return event


@dataclass(frozen=True)
class AuditReport:
    """The outcome of walking the chain: intact, or the first bad event and what is wrong."""

    ok: bool
    count: int
    message: str
    bad_event_id: int | None = None
    head: str = GENESIS_HASH


@dataclass
class _Cursor:
    """How far the walk got: the last good event and how many were good."""

    last_id: int = 0
    last_hash: str = GENESIS_HASH
    last_action: str = ""
    count: int = 0


# The canonical encoding written out by hand for the verifier: the same bytes as
# canonical_hash (sorted keys: action, actor, actor_id, at, data, prev, ticket), without
# building a dict per event; test_audit_chain checks the two agree.
_STR = json.encoder.encode_basestring_ascii


def _int_or_null(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _iso_utc(value: Any) -> str:
    """``at`` as audit_record hashed it: ISO 8601 in UTC with a +00:00 offset.

    PostgreSQL hands back aware datetimes; SQLite the text Django stored (naive UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat()


def _raw_chunks(after: int) -> Any:
    """Events after id ``after`` in id order as raw tuples, VERIFY_CHUNK rows per query.

    Keyset pages over the primary key (each an index range scan, on either database)
    and no ORM conversion per row: memory stays flat and the walk stays fast at 1M."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    columns = "id, at, actor_id, actor_name, action, ticket_id, data, prev_hash, hash"
    sql = f"SELECT {columns} FROM {table} WHERE id > %s ORDER BY id LIMIT %s"  # noqa: S608
    while True:
        with connection.cursor() as raw:
            raw.execute(sql, [after, VERIFY_CHUNK])
            rows = raw.fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _walk(cursor: _Cursor) -> AuditReport | None:
    """Check the events after the cursor in id order, streaming, and advance the cursor;
    stop at the first bad event and report it."""
    loads, sha256, encode, string = json.loads, hashlib.sha256, _ENCODER.encode, _STR
    last_id, last_hash, last_action, count = (
        cursor.last_id,
        cursor.last_hash,
        cursor.last_action,
        cursor.count,
    )
    failure: AuditReport | None = None
    for rows in _raw_chunks(last_id):
        for pk, at, actor_id, actor_name, action, ticket_id, data, prev_hash, stored in rows:
            if prev_hash != last_hash:
                if count == 0:
                    what = (
                        "is the oldest event but does not start the chain: "
                        "earlier events were deleted or its link was edited"
                    )
                else:
                    what = (
                        f"does not link to event {last_id} before it: an event between "
                        "them was deleted or inserted, the events were reordered, or its "
                        "link was edited"
                    )
                failure = AuditReport(False, count, f"event {pk} ({action}) {what}", pk)
                break
            if isinstance(data, str):
                data = loads(data)
            blob = (
                f'{{"action":{string(action)},"actor":{string(actor_name)},'
                f'"actor_id":{_int_or_null(actor_id)},"at":"{_iso_utc(at)}",'
                f'"data":{encode(data)},"prev":{string(prev_hash)},'
                f'"ticket":{_int_or_null(ticket_id)}}}'
            )
            if sha256(blob.encode("utf-8")).hexdigest() != stored:
                message = (
                    f"event {pk} ({action}) was altered: its stored fields do not match its hash"
                )
                failure = AuditReport(False, count, message, pk)
                break
            last_id, last_hash, last_action = pk, stored, action
            count += 1
        if failure is not None:
            break
    cursor.last_id, cursor.last_hash, cursor.last_action, cursor.count = (
        last_id,
        last_hash,
        last_action,
        count,
    )
    return failure


def audit_check() -> AuditReport:
    """Walk the chain oldest first, then compare its end with the chain head."""
    cursor = _Cursor()
    head: str | None = None
    # The head is read after the events it must match, never before: events appended
    # while we walked are walked too, from where we stopped (the head lock orders ids).
    for _ in range(1000):
        before = cursor.last_id
        failure = _walk(cursor)
        if failure is not None:
            return failure
        head = AuditChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()
        if head is None or head == cursor.last_hash or cursor.last_id == before:
            break
    count, last = cursor.count, f"event {cursor.last_id} ({cursor.last_action})"
    if head is None:
        if count == 0:
            return AuditReport(True, 0, "0 events, chain intact")
        return AuditReport(
            False,
            count,
            f"{last} is the newest event but the chain head is missing: the head row was deleted",
            cursor.last_id,
        )
    if head == cursor.last_hash:
        return AuditReport(True, count, f"{count} events, chain intact; head {head}", head=head)
    if count == 0:
        return AuditReport(
            False,
            0,
            f"no events, but the chain head names event hash {head}: the audit trail was emptied",
            head=head,
        )
    anchor = AuditEvent.objects.filter(hash=head).values_list("id", flat=True).first()
    if anchor is not None and anchor < cursor.last_id:
        extra = (
            AuditEvent.objects.filter(id__gt=anchor).order_by("id").values_list("id", "action")
        ).first()
        assert extra is not None
        return AuditReport(
            False,
            count,
            f"event {extra[0]} ({extra[1]}) comes after the chain head (event {anchor}): "
            "it was inserted without going through the chain head",
            extra[0],
            head=head,
        )
    return AuditReport(
        False,
        count,
        f"{last} is the newest event but the chain head names hash {head}: "
        "newer events were deleted",
        cursor.last_id,
        head=head,
    )


def audit_verify() -> tuple[bool, str]:
    """Verify the chain: (True, summary) or (False, the first bad event and what is wrong)."""
    report = audit_check()
    return report.ok, report.message


def audit_verify_and_record(*, source: str) -> tuple[AuditReport, AuditVerification]:
    """Walk the whole chain and keep the outcome (the audit page shows the last one)."""
    start = time.perf_counter()
    report = audit_check()
    seconds = time.perf_counter() - start
    with transaction.atomic():
        verification = AuditVerification.objects.create(
            at=timezone.now(),
            ok=report.ok,
            count=report.count,
            message=report.message,
            bad_event_id=report.bad_event_id,
            head=report.head,
            seconds=seconds,
            source=source[:32],
        )
    return report, verification


# Refusals are recorded with bounded text: a flood of them adds rows, never big ones.
_REFUSAL_TEXT = 300


def refusal_record(
    *,
    user: Any,
    method: str,
    path: str,
    reason: str,
    status: int = 403,
    ticket_id: int | None = None,
) -> None:
    """A signed-in person was refused (an HTTP 403, or a page's "you may not" message):
    who, what they tried and why, in its own transaction (the refused change rolled back).
    A refusal about a ticket records the ticket, so only those who may see the ticket read
    it in the audit trail (selectors.audit_events).

    Anonymous callers are not recorded here: they get 401 or the sign-in page, and
    failed sign-ins are recorded by services.accounts."""
    if not getattr(user, "is_authenticated", False):
        return
    with transaction.atomic():
        ticket = Ticket.objects.filter(pk=ticket_id).first() if ticket_id else None
        audit_record(
            actor=user,
            action="access.refused",
            ticket=ticket,
            data={
                "method": method[:16],
                "path": path[:_REFUSAL_TEXT],
                "reason": str(reason)[:_REFUSAL_TEXT],
                "status": status,
            },
        )
