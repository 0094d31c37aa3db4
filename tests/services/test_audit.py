"""The audit trail is a hash chain: any edit, deletion, insertion or reordering is found."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from deployments import services
from deployments.lib import audit_guard
from deployments.models import AuditChainHead, AuditEvent
from deployments.services import audit
from tests.helpers.factories import TicketFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tamperable(db: None) -> Iterator[None]:
    """These tests edit and delete audit rows on purpose, as someone with the table
    owner's rights would: the append-only triggers (test_audit_guard) are lifted."""
    with audit_guard.lifted(connection):
        yield


def _events(n: int, *, actor: Any = "system") -> list[AuditEvent]:
    with transaction.atomic():
        return [
            services.audit_record(actor=actor, action=f"test.{i}", data={"i": i}) for i in range(n)
        ]


def _refused(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit")


def test_verify_audit_accepts_an_intact_chain(capsys: pytest.CaptureFixture[str]) -> None:
    _events(3)
    call_command("verify_audit")
    assert "3 events, chain intact" in capsys.readouterr().out


def test_verify_audit_accepts_an_empty_trail() -> None:
    assert services.audit_verify() == (True, "0 events, chain intact")


def test_verify_audit_names_an_altered_event() -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[1].pk).update(data={"i": 99})
    _refused(f"event {events[1].pk} \\(test.1\\) was altered")


def _edits(user: User, ticket_id: int) -> dict[str, dict[str, Any]]:
    return {
        "at": {"at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
        "actor": {"actor": user},
        "actor_name": {"actor_name": "mallory"},
        "action": {"action": "test.other"},
        "ticket": {"ticket_id": ticket_id},
        "data": {"data": {"i": 1, "extra": True}},
        "hash": {"hash": "f" * 64},
    }


@pytest.mark.parametrize("field", ["at", "actor", "actor_name", "action", "ticket", "data", "hash"])
@pytest.mark.parametrize("position", [0, 1, 2], ids=["oldest", "middle", "newest"])
def test_verify_audit_names_an_edit_of_any_field(field: str, position: int) -> None:
    user = UserFactory(username="mallory")
    ticket = TicketFactory()
    events = _events(3)
    target = events[position]
    AuditEvent.objects.filter(pk=target.pk).update(**_edits(user, ticket.pk)[field])
    _refused(f"event {target.pk} ")
    report = audit.audit_check()
    assert not report.ok
    assert report.bad_event_id == target.pk
    assert report.message.startswith(f"event {target.pk} (")
    assert "altered" in report.message


def test_verify_audit_notices_that_the_actor_was_cleared() -> None:
    """actor_name stays, the user link goes: only the hashed actor id reveals it."""
    user = UserFactory(username="mallory")
    events = _events(2, actor=user)
    AuditEvent.objects.filter(pk=events[0].pk).update(actor=None)
    _refused(f"event {events[0].pk} \\(test.0\\) was altered")


@pytest.mark.parametrize("position", [1, 2])
def test_verify_audit_names_an_edited_link(position: int) -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[position].pk).update(prev_hash=events[0].prev_hash)
    _refused(f"event {events[position].pk} \\(test.{position}\\) does not link")


def test_verify_audit_notices_a_deleted_event() -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    _refused(f"event {events[2].pk} .* does not link to event {events[0].pk}")


def test_verify_audit_notices_a_deleted_oldest_event() -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[0].pk).delete()
    _refused(f"event {events[1].pk} \\(test.1\\) is the oldest event but does not start")


@pytest.mark.parametrize("deleted", [1, 2])
def test_verify_audit_notices_deleted_newest_events(deleted: int) -> None:
    events = _events(4)
    AuditEvent.objects.filter(pk__in=[e.pk for e in events[-deleted:]]).delete()
    last = events[-deleted - 1]
    _refused(f"event {last.pk} \\({last.action}\\) is the newest .* newer events were deleted")


def test_verify_audit_notices_an_emptied_trail() -> None:
    _events(3)
    AuditEvent.objects.all().delete()
    _refused("no events, but the chain head names .* the audit trail was emptied")


def test_verify_audit_notices_a_deleted_chain_head() -> None:
    events = _events(2)
    AuditChainHead.objects.all().delete()
    _refused(f"event {events[1].pk} \\(test.1\\) .* the chain head is missing")


def test_verify_audit_notices_swapped_events() -> None:
    """Reordering: two events trade places (their ids keep their slots, contents move)."""
    events = _events(4)
    first, second = events[1], events[2]
    rows = {e.pk: AuditEvent.objects.filter(pk=e.pk).values().get() for e in (first, second)}
    # Move them aside first: hash is unique.
    AuditEvent.objects.filter(pk=first.pk).update(hash="a" * 64)
    AuditEvent.objects.filter(pk=second.pk).update(hash="b" * 64)
    for target, source in ((first.pk, second.pk), (second.pk, first.pk)):
        values = {k: v for k, v in rows[source].items() if k != "id"}
        AuditEvent.objects.filter(pk=target).update(**values)
    _refused(f"event {first.pk} \\(test.2\\) does not link to event {events[0].pk}")


def _forge(prev: AuditEvent, *, pk: int | None = None, action: str = "forged") -> AuditEvent:
    """An event written beside audit_record, with a perfectly valid hash and link."""
    event = AuditEvent(
        pk=pk,
        at=prev.at + dt.timedelta(seconds=1),
        actor_name="mallory",
        action=action,
        data={"forged": True},
        prev_hash=prev.hash,
    )
    event.hash = audit.event_hash(event)
    event.save(force_insert=True)
    return event


def test_verify_audit_notices_a_forged_event_appended_beside_the_head() -> None:
    events = _events(3)
    forged = _forge(events[-1])
    _refused(f"event {forged.pk} \\(forged\\) comes after the chain head \\(event {events[-1].pk}")


def test_verify_audit_notices_a_forged_event_inserted_in_a_gap() -> None:
    events = _events(3)
    # An id left free between two events (a rolled back transaction leaves such gaps).
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    forged = _forge(events[0], pk=events[1].pk)
    _refused(f"event {events[2].pk} \\(test.2\\) does not link to event {forged.pk}")


def test_events_link_to_their_predecessor() -> None:
    first, second = _events(2)
    assert first.prev_hash == services.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert AuditChainHead.objects.get().last_hash == second.hash


def test_the_hash_is_the_documented_canonical_encoding() -> None:
    """Anyone can re-verify the trail from the documented encoding, without the portal."""
    user = UserFactory(username="zoë")
    ticket = TicketFactory()
    with transaction.atomic():
        event = services.audit_record(
            actor=user, action="ticket.note", ticket=ticket, data={"b": "ü", "a": [1, None]}
        )
    event.refresh_from_db()
    blob = json.dumps(
        {
            "at": event.at.isoformat(),
            "actor": "zoë",
            "actor_id": user.pk,
            "action": "ticket.note",
            "ticket": ticket.pk,
            "data": {"a": [1, None], "b": "ü"},
            "prev": services.GENESIS_HASH,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert event.hash == hashlib.sha256(blob.encode()).hexdigest()
    assert audit.event_hash(event) == event.hash
    payload = json.dumps(event.payload(), sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(payload.encode()).hexdigest() == event.hash


def test_verification_streams_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "VERIFY_CHUNK", 3)
    events = _events(10)
    assert audit.audit_check().ok and audit.audit_check().count == 10
    AuditEvent.objects.filter(pk=events[7].pk).update(action="test.x")
    assert audit.audit_check().bad_event_id == events[7].pk


def test_events_appended_during_verification_are_not_reported_as_tampering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head is read after the walk; a writer that got in meanwhile is walked too."""
    _events(3)
    walk = audit._walk
    calls: list[int] = []

    def walk_then_append(*args: Any) -> Any:
        result = walk(*args)
        if not calls:
            _events(2)  # a concurrent writer commits after our snapshot of the events
        calls.append(1)
        return result

    monkeypatch.setattr(audit, "_walk", walk_then_append)
    report = audit.audit_check()
    assert report.ok, report.message
    assert report.count == 5 and len(calls) >= 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_linear_chain() -> None:
    """Writers in threads, each in its own transaction on its own connection: the head row
    lock gives one order, so no two events share a predecessor and ids follow the links."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises every writer anyway")
    threads_n, per_thread = 8, 50
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    services.audit_record(actor="system", action=f"w{n}", data={"i": i})
                    # Hold the transaction open a little so the writers really overlap.
                    AuditChainHead.objects.filter(pk=1).exists()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = list(AuditEvent.objects.order_by("id").values_list("prev_hash", "hash", "at"))
    assert len(rows) == threads_n * per_thread
    assert len({prev for prev, _, _ in rows}) == len(rows)  # no fork
    assert [prev for prev, _, _ in rows[1:]] == [h for _, h, _ in rows[:-1]]
    assert [at for _, _, at in rows] == sorted(at for _, _, at in rows)
    report = audit.audit_check()
    assert report.ok, report.message
    assert report.count == threads_n * per_thread
