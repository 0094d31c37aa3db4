"""DORA metrics and approval waits per environment, computed by aggregate queries.

Every figure is defined in docs/metrics.md. The database does the counting and the
percentiles (``percentile_cont`` on PostgreSQL; the same function registered on SQLite
connections), so the cost does not grow with the number of rows Python sees: four
queries for any number of environments and any length of history.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import (
    Aggregate,
    Count,
    Expression,
    F,
    Field,
    FloatField,
    Func,
    Min,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.sql.compiler import SQLCompiler

from deployments.choices import ChangeType, Role, TicketStatus
from deployments.models import (
    Approval,
    AuditEvent,
    Deployment,
    DeploymentOutcome,
    Environment,
    Stack,
    TerraformRun,
    Ticket,
)

UTC = dt.UTC
PERIOD_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 365


class MetricsInputError(ValueError):
    """A bad ``days`` or ``environment`` parameter (HTTP 400)."""


def parse_days(raw: str | None) -> int:
    """``?days=``: a whole number of days, 1 to 365; absent means 30 (empty is no number:
    the schema says integer)."""
    if raw is None:
        return DEFAULT_DAYS
    text = raw.strip()
    if not text.isdigit() or len(text) > 3:
        raise MetricsInputError(f"days must be a whole number from 1 to {MAX_DAYS}")
    days = int(text)
    if not 1 <= days <= MAX_DAYS:
        raise MetricsInputError(f"days must be a whole number from 1 to {MAX_DAYS}")
    return days


@dataclass(frozen=True)
class Period:
    """The last ``days`` UTC calendar days, today included: from midnight UTC of the first
    day to ``end`` (now)."""

    days: int
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def ending(cls, now: dt.datetime, days: int) -> Period:
        today = now.astimezone(UTC).date()
        first = today - dt.timedelta(days=days - 1)
        start = dt.datetime(first.year, first.month, first.day, tzinfo=UTC)
        return cls(days=days, start=start, end=now)

    def dates(self) -> list[dt.date]:
        first = self.start.date()
        return [first + dt.timedelta(days=i) for i in range(self.days)]


# --- SQL building blocks -----------------------------------------------------------


class SecondsBetween(Func):
    """``end - start`` in seconds (a float), on PostgreSQL and SQLite."""

    output_field = FloatField()
    arity = 2

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def _parts(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        end_sql, end_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        return end_sql, start_sql, (*end_params, *start_params)

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        end_sql, start_sql, params = self._parts(compiler, connection)
        return (f"CAST(EXTRACT(EPOCH FROM ({end_sql} - {start_sql})) AS double precision)", params)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        end_sql, start_sql, params = self._parts(compiler, connection)
        return f"((julianday({end_sql}) - julianday({start_sql})) * 86400.0)", params


class _FloatPair(Field):
    """[median, p90] as the database gives it: a float8[] (PostgreSQL) or JSON text."""

    def get_internal_type(self) -> str:
        return "FloatPair"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return None  # never a column

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[Any] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return list(json.loads(value))
        return list(value)


class MedianP90(Aggregate):
    """The median and 90th percentile of the non-null values, continuous (linear
    interpolation) as PostgreSQL's ``percentile_cont``, from one evaluation of the
    expression: ``[median, p90]``, or NULL over no values."""

    function = "percentile_cont"
    name = "MedianP90"
    output_field = _FloatPair()
    template = (
        "%(function)s(ARRAY[0.5, 0.9]::double precision[]) WITHIN GROUP (ORDER BY %(expressions)s)"
    )

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        clone = self.copy()
        clone.function = "cc_median_p90"
        clone.template = "%(function)s(%(expressions)s)"
        return super(MedianP90, clone).as_sql(compiler, connection, **extra)


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """``percentile_cont`` in Python (what SQLite runs; and the reference for tests)."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _SqliteMedianP90:
    """The SQLite aggregate behind MedianP90.as_sqlite (NULLs ignored)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> str | None:
        if not self.values:
            return None
        return json.dumps([percentile(self.values, 0.5), percentile(self.values, 0.9)])


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("cc_median_p90", 1, _SqliteMedianP90)


connection_created.connect(register_sqlite_functions, dispatch_uid="metrics_sqlite_functions")


# --- what counts as what -------------------------------------------------------------

SUCCEEDED = Q(outcome=DeploymentOutcome.SUCCEEDED)
# A change failure: the apply failed, its monitoring failed, or it was rolled back.
BAD = (
    Q(outcome=DeploymentOutcome.FAILED)
    | Q(rolled_back_at__isnull=False)
    | Q(monitoring_failed_at__isnull=False)
)
# What a rollback could return to (Deployment.is_good).
GOOD = SUCCEEDED & Q(rolled_back_at__isnull=True, monitoring_failed_at__isnull=True)
# Changes whose lead time counts: succeeded, and not a rollback (which restores, not changes).
LEAD = SUCCEEDED & ~Q(change_type=ChangeType.ROLLBACK)

ROLE_ORDER = [r.value for r in Role]


@dataclass
class Summary:
    count: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass
class RoleWait:
    role: str
    role_label: str
    approvals: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass
class DayCount:
    date: str
    deployments: int
    succeeded: int
    failures: int


@dataclass
class EnvironmentMetrics:
    environment: str
    display_name: str
    deployments: int
    succeeded: int
    failures: int
    deployments_per_day: float
    deployments_per_week: float
    change_failure_rate: float | None
    lead_time: Summary
    time_to_restore: Summary
    unrestored: int
    approval_waits: list[RoleWait]
    awaiting_approval_now: int
    oldest_waiting_since: str | None
    daily: list[DayCount] = field(default_factory=list)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _summary(count: int, pair: list[float] | None) -> Summary:
    median, p90 = pair or (None, None)
    return Summary(count, _seconds(median), _seconds(p90))


def _deployments(env_ids: list[int], period: Period, stack_id: int | None) -> Any:
    found = Deployment.objects.filter(
        environment_id__in=env_ids, finished_at__gte=period.start, finished_at__lte=period.end
    )
    return (found.filter(stack_id=stack_id) if stack_id else found).order_by()


def _deployment_figures(
    env_ids: list[int], period: Period, stack_id: int | None
) -> dict[int, dict[str, Any]]:
    """Counts, lead time and time to restore per environment (of one stack: restored by
    that stack's next good deployment): one query."""
    later_good = Deployment.objects.filter(
        GOOD, environment=OuterRef("environment"), finished_at__gt=OuterRef("finished_at")
    )
    next_good = (
        (later_good.filter(stack=OuterRef("stack")) if stack_id else later_good)
        .order_by("finished_at")
        .values("finished_at")[:1]
    )
    lead: Expression = SecondsBetween(F("finished_at"), F("ticket__created_at"))
    restore: Expression = SecondsBetween(Subquery(next_good), F("finished_at"))
    rows = (
        _deployments(env_ids, period, stack_id)
        .values("environment_id")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=SUCCEEDED),
            failures=Count("id", filter=BAD),
            lead_n=Count("id", filter=LEAD),
            lead_times=MedianP90(lead, filter=LEAD),
            restored=Count(Subquery(next_good), filter=BAD),
            restore_times=MedianP90(restore, filter=BAD),
        )
    )
    return {row["environment_id"]: row for row in rows}


def _daily(
    env_ids: list[int], period: Period, stack_id: int | None
) -> dict[int, dict[dt.date, dict[str, int]]]:
    rows = (
        _deployments(env_ids, period, stack_id)
        .annotate(day=TruncDate("finished_at", tzinfo=UTC))
        .values("environment_id", "day")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=SUCCEEDED),
            failures=Count("id", filter=BAD),
        )
    )
    result: dict[int, dict[dt.date, dict[str, int]]] = {}
    for row in rows:
        result.setdefault(row["environment_id"], {})[row["day"]] = row
    return result


def _approval_waits(
    env_ids: list[int], period: Period, stack_id: int | None
) -> dict[int, list[dict[str, Any]]]:
    """Per environment and role: from the ticket's latest entry into awaiting_approval to
    each approval given in the period. Approvals record that instant (``waiting_since``);
    for one that does not (written around the service), the latest audited entry before
    it, else its plan finishing (a plan finishing is what moves a ticket there), else its
    plan being requested. COALESCE stops at the first value: the subquery runs only for
    approvals without ``waiting_since``."""
    entered = (
        AuditEvent.objects.filter(
            ticket=OuterRef("ticket"),
            action="ticket.transition",
            data__to=TicketStatus.AWAITING_APPROVAL.value,
            at__lte=OuterRef("created_at"),
        )
        .order_by("-at")
        .values("at")[:1]
    )
    plan_done = (
        TerraformRun.objects.filter(pk=OuterRef("plan_run_id"))
        .annotate(done=Coalesce("finished_at", "created_at"))
        .values("done")[:1]
    )
    since = Coalesce(F("waiting_since"), Subquery(entered), Subquery(plan_done))
    approvals = Approval.objects.filter(
        ticket__environment_id__in=env_ids,
        created_at__gte=period.start,
        created_at__lte=period.end,
    )
    rows = (
        (approvals.filter(ticket__stack_id=stack_id) if stack_id else approvals)
        .values("ticket__environment_id", "role")
        .annotate(n=Count("id"), waits=MedianP90(SecondsBetween(F("created_at"), since)))
        .order_by()
    )
    result: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["n"]:
            result.setdefault(row["ticket__environment_id"], []).append(row)
    return result


def _waiting_now(env_ids: list[int], stack_id: int | None) -> dict[int, dict[str, Any]]:
    waiting = Ticket.objects.filter(
        environment_id__in=env_ids, status=TicketStatus.AWAITING_APPROVAL
    )
    rows = (
        (waiting.filter(stack_id=stack_id) if stack_id else waiting)
        .values("environment_id")
        .annotate(n=Count("id"), oldest=Min("status_changed_at"))
        .order_by()
    )
    return {row["environment_id"]: row for row in rows}


@contextmanager
def _without_jit() -> Iterator[None]:
    """PostgreSQL prices the correlated subqueries (next good deployment, entry into
    awaiting_approval) as if each ran for every row, which crosses jit_above_cost: it then
    spends about a second compiling queries that run in tens of milliseconds. The
    metrics' reads turn JIT off for their own transaction (SET LOCAL: nothing else is
    affected)."""
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def compute(
    environments: Sequence[Environment], period: Period, stack: Stack | None = None
) -> list[EnvironmentMetrics]:
    """The figures for each environment over the period, of one stack or of all of them
    (four queries in all, and one more on PostgreSQL to turn JIT off)."""
    stack_id = stack.pk if stack is not None else None
    env_ids = [env.pk for env in environments]
    if not env_ids:
        return []
    with _without_jit():
        figures = _deployment_figures(env_ids, period, stack_id)
        daily = _daily(env_ids, period, stack_id)
        waits = _approval_waits(env_ids, period, stack_id)
        waiting = _waiting_now(env_ids, stack_id)
    labels = dict(Role.choices)
    result = []
    for env in environments:
        row = figures.get(env.pk, {})
        total = row.get("total", 0)
        succeeded = row.get("succeeded", 0)
        failures = row.get("failures", 0)
        env_daily = daily.get(env.pk, {})
        role_rows = sorted(
            waits.get(env.pk, []),
            key=lambda r: ROLE_ORDER.index(r["role"]) if r["role"] in ROLE_ORDER else 99,
        )
        now_waiting = waiting.get(env.pk, {})
        oldest = now_waiting.get("oldest")
        result.append(
            EnvironmentMetrics(
                environment=env.name,
                display_name=env.display_name,
                deployments=total,
                succeeded=succeeded,
                failures=failures,
                deployments_per_day=round(succeeded / period.days, 2),
                deployments_per_week=round(succeeded * 7 / period.days, 2),
                change_failure_rate=round(failures / total, 4) if total else None,
                lead_time=_summary(row.get("lead_n", 0), row.get("lead_times")),
                time_to_restore=_summary(row.get("restored", 0), row.get("restore_times")),
                unrestored=failures - row.get("restored", 0),
                approval_waits=[
                    RoleWait(
                        role=r["role"],
                        role_label=str(labels.get(r["role"], r["role"])),
                        approvals=r["n"],
                        median_seconds=_seconds((r["waits"] or [None])[0]),
                        p90_seconds=_seconds((r["waits"] or [None, None])[1]),
                    )
                    for r in role_rows
                ],
                awaiting_approval_now=now_waiting.get("n", 0),
                oldest_waiting_since=oldest.astimezone(UTC).isoformat() if oldest else None,
                daily=[
                    DayCount(
                        date=day.isoformat(),
                        deployments=env_daily.get(day, {}).get("total", 0),
                        succeeded=env_daily.get(day, {}).get("succeeded", 0),
                        failures=env_daily.get(day, {}).get("failures", 0),
                    )
                    for day in period.dates()
                ],
            )
        )
    return result


def metrics_for(
    environments: Sequence[Environment], days: int, now: dt.datetime, stack: Stack | None = None
) -> dict[str, Any]:
    """The JSON-ready metrics of these environments (of one stack, or all) over the last
    ``days`` days, cached
    for METRICS_CACHE_SECONDS under a key naming the environments, the period and the
    TTL-long slice of time ``now`` falls in (so an answer is never older than the TTL,
    and every web process shares it)."""
    period = Period.ending(now, days)
    ttl = settings.METRICS_CACHE_SECONDS
    key = "metrics:v2:{}:{}:{}:{}".format(
        ",".join(str(env.pk) for env in environments),
        stack.pk if stack is not None else "",
        days,
        int(now.timestamp()) // ttl if ttl > 0 else 0,
    )
    if ttl > 0:
        cached = cache.get(key)
        if cached is not None:
            return dict(cached)
    payload = {
        "days": days,
        "period_start": period.start.isoformat(),
        "period_end": period.end.astimezone(UTC).isoformat(),
        "generated_at": now.astimezone(UTC).isoformat(),
        "stack": stack.name if stack is not None else None,
        "environments": [asdict(m) for m in compute(environments, period, stack)],
    }
    if ttl > 0:
        cache.set(key, payload, ttl)
    return payload


def choose_environments(visible: Sequence[Environment], name: str | None) -> list[Environment]:
    """``?environment=``: one of the environments the caller may see (absent: all of them).
    An unknown name and one the caller may not see get the same answer."""
    if name is None or name == "":
        return list(visible)
    for env in visible:
        if env.name == name:
            return [env]
    raise MetricsInputError("environment: no such environment among those you may see")


def choose_stack(name: str | None) -> Stack | None:
    """``?stack=``: one stack's deployments (absent or empty: every stack)."""
    if name is None or name == "":
        return None
    found = Stack.objects.filter(name=name).first()
    if found is None:
        raise MetricsInputError("stack: no such stack")
    return found
