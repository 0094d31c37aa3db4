"""The audit table is append-only in the database itself, whatever the code above it does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments import services
from deployments.lib import audit_guard
from deployments.models import AuditEvent
from deployments.services import audit
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.django_db


def _event() -> AuditEvent:
    with transaction.atomic():
        return services.audit_record(actor="system", action="test.guard", data={"i": 1})


def _refused(run: object) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        run()  # type: ignore[operator]


def test_the_orm_cannot_update_an_event() -> None:
    event = _event()
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).update(action="test.edited"))
    event.action = "test.edited"
    _refused(lambda: event.save())
    assert AuditEvent.objects.get(pk=event.pk).action == "test.guard"


def test_the_orm_cannot_delete_an_event() -> None:
    event = _event()
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).delete())
    _refused(lambda: AuditEvent.objects.all().delete())
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def test_plain_sql_cannot_update_or_delete_an_event() -> None:
    event = _event()
    table = audit_guard.TABLE
    _refused(lambda: _sql(f"UPDATE {table} SET action = 'x' WHERE id = {event.pk}"))
    _refused(lambda: _sql(f"DELETE FROM {table} WHERE id = {event.pk}"))
    _refused(lambda: _sql(f"DELETE FROM {table}"))
    assert audit.audit_check().ok


def test_appending_still_works_and_the_chain_verifies() -> None:
    _event()
    _event()
    report = audit.audit_check()
    assert report.ok and report.count == 2


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_with_a_trigger() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    event = _event()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [audit_guard.TABLE],
        )
        assert [row[0] for row in cursor.fetchall()] == [audit_guard.TRIGGER]
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).update(data={"i": 2}))
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).delete())


@pytest.mark.postgres
def test_postgres_tampering_past_the_trigger_is_caught_by_verification() -> None:
    """A superuser can switch triggers off for a session (replication role); the hash
    chain still names the edited row."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    events = [_event() for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"UPDATE {audit_guard.TABLE} SET data = '{{\"i\": 9}}' WHERE id = %s", [events[1].pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = audit.audit_check()
    assert not report.ok and report.bad_event_id == events[1].pk
    assert "altered" in report.message


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_database_still_empties() -> None:
    """Teardown of this test flushes the tables (DELETE on SQLite): it must not fail."""
    _event()
    assert AuditEvent.objects.count() == 1


# No NUL and no lone surrogate: PostgreSQL refuses both (validation keeps them out).
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(_chars, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(_chars, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.dictionaries(st.text(_chars, max_size=6), _json, max_size=4),
    name=st.text(_chars, min_size=1, max_size=20),
    action=st.text(_chars, min_size=1, max_size=20),
    micro=st.integers(0, 999_999),
)
def test_the_fast_verifier_encodes_exactly_like_canonical_hash(
    data: dict[str, object], name: str, action: str, micro: int
) -> None:
    """The verifier writes the canonical JSON by hand (speed); it must be byte-identical."""
    at = dt.datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=dt.UTC)
    with transaction.atomic():
        event = AuditEvent(at=at, actor_name=name, action=action, data=data, prev_hash="0" * 64)
        event.hash = audit.event_hash(event)
        event.save()
        from deployments.models import AuditChainHead

        AuditChainHead.objects.update_or_create(pk=1, defaults={"last_hash": event.hash})
        report = audit.audit_check()
        assert report.ok, report.message
        transaction.set_rollback(True)


def _documented_grants(role: str) -> list[str]:
    """The GRANT block of docs/audit.md, for a throwaway role: the docs are what is tested."""
    text = (ROOT / "docs" / "audit.md").read_text()
    block = text.split("```sql\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    sql = "\n".join(lines).replace("ccp_app", role).replace("'…'", "'x'")
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.mark.postgres
def test_postgres_the_documented_app_role_can_append_but_not_rewrite() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    _event()
    role = "ccp_app_test"
    with connection.cursor() as cursor:
        for statement in _documented_grants(role):
            cursor.execute(statement)
        cursor.execute(f"SET ROLE {role}")
    try:
        appended = _event()  # the app appends: event row, sequence, chain head
        table = audit_guard.TABLE
        for statement in (
            f"UPDATE {table} SET action = 'x' WHERE id = {appended.pk}",
            f"DELETE FROM {table} WHERE id = {appended.pk}",
            f"TRUNCATE {table}",
            f"ALTER TABLE {table} DISABLE TRIGGER {audit_guard.TRIGGER}",
            "SET session_replication_role = replica",
        ):
            refused = pytest.raises(DatabaseError, match=r"permission denied|must be owner")
            with refused, transaction.atomic():
                _sql(statement)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert audit.audit_check().ok
