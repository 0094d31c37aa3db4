"""The database triggers that make the audit table append-only (migration 0017).

Kept here, not only in the migration, so the test suite can lift and restore them
around deliberate tampering and around SQLite's flush (which empties tables with DELETE).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TABLE = "deployments_auditevent"
FUNCTION = "deployments_auditevent_refuse"
TRIGGER = "deployments_auditevent_append_only"
SQLITE_TRIGGERS = {
    "UPDATE": "deployments_auditevent_no_update",
    "DELETE": "deployments_auditevent_no_delete",
}
MESSAGE = "audit events are append-only"


def _pg_sql() -> list[str]:
    return [
        f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$""",
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}",
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
    ]


def sqlite_create_sql() -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {op} refused'); END"
        for op, name in SQLITE_TRIGGERS.items()
    ]


def sqlite_drop_sql() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS.values()]


def create_guard(connection: Any) -> None:
    statements = _pg_sql() if connection.vendor == "postgresql" else sqlite_create_sql()
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def drop_guard(connection: Any) -> None:
    if connection.vendor == "postgresql":
        statements = [
            f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}",
            f"DROP FUNCTION IF EXISTS {FUNCTION}()",
        ]
    elif connection.vendor == "sqlite":
        statements = sqlite_drop_sql()
    else:
        return
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@contextmanager
def lifted(connection: Any) -> Iterator[None]:
    """Tamper on purpose (tests, a documented repair): the guard is off inside, back after.

    On PostgreSQL this needs a superuser (session_replication_role = replica switches
    off ordinary triggers for the session; the app's role cannot do it)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = origin")
        return
    drop_guard(connection)
    try:
        yield
    finally:
        create_guard(connection)
