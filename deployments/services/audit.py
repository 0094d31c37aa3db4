"""The append-only, hash-chained audit trail."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.utils import timezone

from deployments.models import AuditChainHead, AuditEvent, Ticket

GENESIS_HASH = "0" * 64


def _event_hash(event: AuditEvent) -> str:
    blob = json.dumps(event.payload(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def audit_record(
    *, actor: Any, action: str, ticket: Ticket | None = None, data: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an event to the hash chain; must run inside the caller's transaction."""
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
    event.hash = _event_hash(event)
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


def audit_verify() -> tuple[bool, str]:
    """Walk the chain oldest first; report the first event whose hash or link is wrong."""
    prev = GENESIS_HASH
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return False, f"event {event.pk} ({event.action}) does not link to the event before it"
        if _event_hash(event) != event.hash:
            return False, f"event {event.pk} ({event.action}) was altered: its hash does not match"
        prev = event.hash
        count += 1
    return True, f"{count} events, chain intact"


# --- tickets -----------------------------------------------------------------------
