"""Demo history in bulk: tickets with their runs, approvals, deployments, follow-ups and a
valid audit hash chain, fast enough for 100,000 tickets (`seed_demo --tickets N`).

Rows are built in Python and written with ``bulk_create`` in batches of ``BATCH`` tickets,
one transaction per batch. Primary keys are reserved up front (PostgreSQL: ``nextval`` on
the table's sequence; SQLite: past the highest id, under SQLite's single-writer lock) so
that tickets can name their current plan and audit events their runs without a second
pass of UPDATEs. Audit events are hashed here with ``services.audit.canonical_hash`` and
chained from the chain head, which each batch holds locked (``select_for_update``) until it
commits, exactly as ``audit_record`` would: ``verify_audit`` passes afterwards.

Seeding is additive and counts what it made: ``seed_history(N)`` creates N minus the
tickets already marked ``source="seed"``, so re-running with the same N adds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from deployments.choices import ChangeType, RunKind, RunStatus, TicketStatus
from deployments.models import (
    Approval,
    AuditChainHead,
    AuditEvent,
    Deployment,
    DeploymentOutcome,
    Environment,
    FollowUp,
    FollowUpKind,
    Rejection,
    Stack,
    TerraformRun,
    Ticket,
)
from deployments.policy import risk
from deployments.services.audit import GENESIS_HASH, canonical_hash

BATCH = 2000
INSERT_BATCH = 1000
# Every HEAVY_EVERY-th seeded ticket was re-planned until it has HEAVY_RUNS runs (the
# benchmark's "ticket page with 50 runs").
HEAVY_EVERY = 5000
HEAVY_RUNS = 50
SEED_LOG = "(seeded history: no log)\n"

TITLES = [
    "Raise app server count for the autumn campaign",
    "Enable versioning on the media bucket",
    "Tighten CPU alarm threshold",
    "Resize cache nodes",
    "Increase queue visibility timeout",
    "Give the processing function more memory",
    "Add a private subnet in a new AZ",
    "Rotate database storage class",
]

# Who approves where (the seeded environments' rules, SPEC §1); others need no approval.
APPROVERS: dict[str, list[tuple[str, str]]] = {
    "staging": [("lead1", "lead_developer")],
    "prod": [("techlead1", "tech_lead"), ("devopslead1", "devops_lead")],
}
ENV_WEIGHTS = {"dev": 5, "staging": 3, "prod": 2}

DEMO_ROLLBACK = risk.clean_rollback_plan(
    {
        "steps": "File a ticket for the last known good commit and deploy it.",
        "expected_minutes": 20,
        "data_considerations": "No schema change; nothing to restore.",
    }
)

# Final statuses of history, and what the last hours still have in flight.
_HISTORY = [
    (TicketStatus.COMPLETED, 78),
    (TicketStatus.APPLY_FAILED, 5),
    (TicketStatus.ROLLED_BACK, 2),
    (TicketStatus.CANCELLED, 6),
    (TicketStatus.REJECTED, 4),
    (TicketStatus.PLAN_FAILED, 5),
]
# Staging tickets deployed and waiting for QA's sign-off are "monitoring" (elsewhere that
# state needs a monitoring period the seed does not write: those end completed).
_IN_FLIGHT = [
    (TicketStatus.AWAITING_APPROVAL, 30),
    (TicketStatus.APPROVED, 15),
    (TicketStatus.MONITORING, 10),
]
_APPLIED = {
    TicketStatus.COMPLETED,
    TicketStatus.APPLY_FAILED,
    TicketStatus.ROLLED_BACK,
    TicketStatus.MONITORING,
}


def demo_risk(rng: random.Random) -> dict[str, Any]:
    """A valid risk questionnaire (deployments.policy.risk), varied so the history shows levels."""
    return risk.clean_risk_assessment(
        {
            "impact": rng.choice(risk.LEVELS),
            "likelihood": rng.choice(risk.LEVELS[:2]),
            "summary": "Seeded demo change: additive, reviewed in staging.",
            "customer_facing": rng.random() < 0.5,
            "tested_in_staging": True,
        }
    )


def span_for(count: int) -> dt.timedelta:
    """How far back the history reaches: 500 tickets make a day, 100,000 two years."""
    days = 1.0 if count <= 500 else min(730.0, count / 137)
    return dt.timedelta(days=days)


def reserve_ids(model: type[Model], n: int) -> list[int]:
    """``n`` fresh primary keys for ``model``, taken from the database before inserting."""
    if n <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, n],
            )
            return sorted(row[0] for row in cursor.fetchall())
        # SQLite: one writer at a time, and the batch's transaction holds the write lock
        # from its first write (the chain head's) on.
        cursor.execute(f'SELECT MAX(id) FROM "{table}"')  # noqa: S608 - a model's table name
        top = cursor.fetchone()[0] or 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        if row:
            top = max(top, row[0])
    return list(range(top + 1, top + 1 + n))


@contextmanager
def historical_timestamps() -> Iterator[None]:
    """Let bulk_create keep the past times we set (auto_now/auto_now_add would overwrite)."""
    fields = [
        Ticket._meta.get_field(name) for name in ("created_at", "status_changed_at", "updated_at")
    ] + [
        model._meta.get_field("created_at")
        for model in (TerraformRun, Approval, Rejection, FollowUp)
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]  # type: ignore[union-attr]
    for f in fields:
        f.auto_now = f.auto_now_add = False  # type: ignore[union-attr]
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add  # type: ignore[union-attr]


@dataclass
class _Spec:
    """One ticket to seed: what happened to it and when."""

    index: int
    filed: dt.datetime
    env: Environment
    status: TicketStatus
    heavy: bool

    @property
    def runs(self) -> int:
        plans = HEAVY_RUNS - 1 if self.heavy else 1
        return plans + (1 if self.status in _APPLIED else 0)


@dataclass
class _Rows:
    tickets: list[Ticket] = field(default_factory=list)
    runs: list[TerraformRun] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    # (at, actor, action, ticket_id, data) — hashed and chained when the batch is written.
    events: list[tuple[dt.datetime, Any, str, int | None, dict[str, Any]]] = field(
        default_factory=list
    )


class _Seeder:
    def __init__(self, users: dict[str, Any], rng: random.Random, now: dt.datetime) -> None:
        self.users = users
        self.rng = rng
        self.now = now
        self.authors = [users["dev1"], users["dev2"], users["lead1"]]
        self._risk_cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    def _risk(self, assessment: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        key = (
            tuple(sorted((k, str(v)) for k, v in assessment.items())),
            summary["add"],
            summary["change"],
        )
        if key not in self._risk_cache:
            self._risk_cache[key] = risk.assess(assessment, summary)
        return self._risk_cache[key]

    def build(self, spec: _Spec, ticket_id: int, run_ids: Iterator[int], deploy_id: int) -> _Rows:
        rng, env, status = self.rng, spec.env, spec.status
        rows = _Rows()
        author = rng.choice(self.authors)
        sha = hashlib.sha1(f"demo-{spec.index}-{ticket_id}".encode()).hexdigest()  # noqa: S324
        details = env.requires_change_details
        assessment = demo_risk(rng) if details else {}
        approvers = [(self.users[u], role) for u, role in APPROVERS.get(env.name, [])]
        t = spec.filed
        rows.events.append(
            (
                t,
                author,
                "ticket.create",
                ticket_id,
                {"environment": env.name, "commit_sha": sha, "source": "seed"},
            )
        )

        def run(kind: str, at: dt.datetime, seconds: int, ok: bool, **extra: Any) -> TerraformRun:
            pk = next(run_ids)
            # History never ends in the future: a run due to start after "now" starts just
            # before it, and runs no longer than the time left.
            at = min(at, self.now - dt.timedelta(seconds=3))
            seconds = max(1, min(seconds, int((self.now - at).total_seconds()) - 2))
            r = TerraformRun(
                id=pk,
                ticket_id=ticket_id,
                environment_id=env.pk,
                kind=kind,
                status=RunStatus.SUCCEEDED if ok else RunStatus.FAILED,
                commit_sha=sha,
                workspace=env.workspace,
                var_file=env.var_file,
                requested_by=extra.pop("requested_by", author),
                exit_code=0 if ok else 1,
                log=SEED_LOG,
                terraform_version="1.9.8",
                worker="seed",
                created_at=at,
                started_at=at + dt.timedelta(seconds=1),
                finished_at=at + dt.timedelta(seconds=1 + seconds),
                **extra,
            )
            rows.runs.append(r)
            assert r.finished_at is not None
            rows.events.append(
                (
                    r.finished_at,
                    "system",
                    "run.finish",
                    ticket_id,
                    {"run": pk, "kind": kind, "status": r.status},
                )
            )
            return r

        plan_ok = status != TicketStatus.PLAN_FAILED
        plan = None
        for attempt in range(HEAVY_RUNS - 1 if spec.heavy else 1):
            summary = {
                "add": rng.randint(0, 6),
                "change": rng.randint(0, 3),
                "destroy": 0,
                "resources": [],
            }
            last = attempt == (HEAVY_RUNS - 2 if spec.heavy else 0)
            ok = plan_ok or not last
            plan = run(
                RunKind.PLAN,
                t + dt.timedelta(seconds=5),
                rng.randint(5, 40),
                ok,
                plan_sha256=hashlib.sha256(f"{sha}-{attempt}".encode()).hexdigest() if ok else "",
                summary=summary if ok else {},
                has_changes=bool(summary["add"] or summary["change"]) if ok else None,
            )
            t = plan.finished_at  # type: ignore[assignment]
        assert plan is not None and plan.finished_at is not None
        plan_summary = plan.summary or {"add": 0, "change": 0}
        ticket_risk = (
            {**self._risk(assessment, plan_summary), "plan_run": plan.pk} if plan_ok else {}
        )
        ticket = Ticket(
            id=ticket_id,
            title=rng.choice(TITLES),
            description="Seeded demo history.",
            environment_id=env.pk,
            commit_sha=sha,
            change_type=ChangeType.NORMAL,
            author_id=author.pk,
            status=status,
            risk_assessment=assessment,
            rollback_plan=DEMO_ROLLBACK if details else {},
            risk=ticket_risk,
            current_plan_id=plan.pk,
            source="seed",
            created_at=spec.filed,
        )
        rows.tickets.append(ticket)

        decided = t + dt.timedelta(minutes=rng.uniform(5, 600))
        decided = min(decided, self.now - dt.timedelta(seconds=1))
        approved = status in _APPLIED or status == TicketStatus.APPROVED
        if approved:
            for user, role in approvers:
                rows.approvals.append(
                    Approval(
                        ticket_id=ticket_id,
                        approver_id=user.pk,
                        role=role,
                        held_roles=[role],
                        plan_run_id=plan.pk,
                        plan_sha256=plan.plan_sha256,
                        comment="seeded",
                        created_at=decided,
                        waiting_since=t,  # the plan finished: it entered awaiting_approval
                    )
                )
                rows.events.append(
                    (decided, user, "approval.grant", ticket_id, {"role": role, "run": plan.pk})
                )
        if status == TicketStatus.REJECTED:
            by = approvers[0][0]
            rows.rejections.append(
                Rejection(
                    ticket_id=ticket_id,
                    rejected_by_id=by.pk,
                    reason="Seeded: not this week.",
                    plan_run_id=plan.pk,
                    created_at=decided,
                )
            )
            rows.events.append((decided, by, "ticket.transition", ticket_id, {"to": status}))
        if status == TicketStatus.CANCELLED:
            rows.events.append((decided, author, "ticket.transition", ticket_id, {"to": status}))
        changed = decided if status != TicketStatus.AWAITING_APPROVAL else t

        if status in _APPLIED:
            deployer = approvers[-1][0] if approvers else author
            failed = status == TicketStatus.APPLY_FAILED
            apply = run(
                RunKind.APPLY,
                decided + dt.timedelta(minutes=rng.uniform(1, 120)),
                rng.randint(10, 300),
                not failed,
                plan_id=plan.pk,
                requested_by=deployer,
            )
            assert apply.finished_at is not None
            done = apply.finished_at
            rolled_back = (
                done + dt.timedelta(hours=rng.uniform(1, 48))
                if status == TicketStatus.ROLLED_BACK
                else None
            )
            if rolled_back is not None:
                rolled_back = min(rolled_back, self.now - dt.timedelta(seconds=1))
            rows.deployments.append(
                Deployment(
                    id=deploy_id,
                    environment_id=env.pk,
                    ticket_id=ticket_id,
                    run_id=apply.pk,
                    change_type=ChangeType.NORMAL,
                    commit_sha=sha,
                    var_file=env.var_file,
                    plan_sha256=plan.plan_sha256,
                    deployed_by_id=deployer.pk,
                    outcome=DeploymentOutcome.FAILED if failed else DeploymentOutcome.SUCCEEDED,
                    started_at=apply.started_at,
                    finished_at=done,
                    rolled_back_at=rolled_back,
                )
            )
            rows.events.append(
                (done, "system", "deployment.record", ticket_id, {"deployment": deploy_id})
            )
            ticket.deployed_at = None if failed else done
            if status == TicketStatus.COMPLETED:
                ticket.completed_at = done + dt.timedelta(minutes=env.monitoring_minutes or 5)
                ticket.completed_at = min(ticket.completed_at, self.now)
                rows.events.append(
                    (ticket.completed_at, "system", "ticket.transition", ticket_id, {"to": status})
                )
            changed = rolled_back or ticket.completed_at or done
            if details and status in (TicketStatus.COMPLETED, TicketStatus.APPLY_FAILED):
                kind = FollowUpKind.POST_MORTEM if failed else FollowUpKind.POST_DEPLOYMENT_REVIEW
                due = done + dt.timedelta(days=7)
                finished = due - dt.timedelta(days=rng.uniform(0.5, 6)) if due < self.now else None
                lead = self.users["techlead1"]
                rows.follow_ups.append(
                    FollowUp(
                        ticket_id=ticket_id,
                        kind=kind,
                        deployment_run_id=apply.pk,
                        due_at=due,
                        done_at=finished,
                        completed_by_id=lead.pk if finished else None,
                        what_happened="Went as planned." if finished else "",
                        created_at=done,
                    )
                )
                if finished:
                    rows.events.append((finished, lead, "followup.complete", ticket_id, {}))
        ticket.status_changed_at = ticket.updated_at = changed
        return rows


def _specs(
    count: int, start: int, rng: random.Random, now: dt.datetime, envs: list[Environment]
) -> list[_Spec]:
    span = span_for(count).total_seconds()
    # Filing times oldest first, so ids follow time as they would.
    offsets = sorted(rng.uniform(60, span) for _ in range(count))
    weights = [ENV_WEIGHTS.get(env.name, 1) for env in envs]
    recent = min(span / 4, 6 * 3600)
    specs = []
    for i, back in enumerate(reversed(offsets)):
        index = start + i
        table = _IN_FLIGHT + _HISTORY if back < recent else _HISTORY
        status = rng.choices([s for s, _ in table], [w for _, w in table])[0]
        env = rng.choices(envs, weights)[0]
        if not APPROVERS.get(env.name):
            # No approval to wait for or be refused by.
            status = {
                TicketStatus.AWAITING_APPROVAL: TicketStatus.APPROVED,
                TicketStatus.REJECTED: TicketStatus.CANCELLED,
            }.get(status, status)
        if status == TicketStatus.MONITORING and env.name != "staging":
            status = TicketStatus.COMPLETED
        heavy = index % HEAVY_EVERY == 0
        if heavy:
            status = TicketStatus.COMPLETED
        specs.append(_Spec(index, now - dt.timedelta(seconds=back), env, status, heavy))
    return specs


def _write_batch(seeder: _Seeder, specs: list[_Spec]) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Demo history: no need to wait for each batch to reach the disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The chain head, locked until this batch commits: appends elsewhere wait, as they
        # would behind audit_record.
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        ticket_ids = iter(reserve_ids(Ticket, len(specs)))
        run_ids = iter(reserve_ids(TerraformRun, sum(s.runs for s in specs)))
        deploy_ids = iter(
            [*reserve_ids(Deployment, sum(1 for s in specs if s.status in _APPLIED)), 0]
        )
        rows = _Rows()
        for spec in specs:
            deploy_id = next(deploy_ids) if spec.status in _APPLIED else 0
            part = seeder.build(spec, next(ticket_ids), run_ids, deploy_id)
            for name in ("tickets", "runs", "approvals", "rejections", "deployments"):
                getattr(rows, name).extend(getattr(part, name))
            rows.follow_ups.extend(part.follow_ups)
            rows.events.extend(part.events)
        stack_id = Stack.default().pk  # seeded history is the default stack's
        for row in (*rows.tickets, *rows.runs, *rows.deployments):
            if getattr(row, "stack_id", None) is None:
                row.stack_id = stack_id  # type: ignore[attr-defined]
        Ticket.objects.bulk_create(rows.tickets, batch_size=INSERT_BATCH)
        TerraformRun.objects.bulk_create(rows.runs, batch_size=INSERT_BATCH)
        Approval.objects.bulk_create(rows.approvals, batch_size=INSERT_BATCH)
        Rejection.objects.bulk_create(rows.rejections, batch_size=INSERT_BATCH)
        Deployment.objects.bulk_create(rows.deployments, batch_size=INSERT_BATCH)
        FollowUp.objects.bulk_create(rows.follow_ups, batch_size=INSERT_BATCH)

        rows.events.sort(key=lambda e: e[0])
        event_ids = iter(reserve_ids(AuditEvent, len(rows.events)))
        prev = head.last_hash
        events = []
        for at, actor, action, ticket_id, data in rows.events:
            user = actor if getattr(actor, "pk", None) else None
            actor_id = user.pk if user else None
            actor_name = user.get_username() if user else str(actor)
            digest = canonical_hash(
                at=at,
                actor_id=actor_id,
                actor_name=actor_name,
                action=action,
                ticket_id=ticket_id,
                data=data,
                prev_hash=prev,
            )
            events.append(
                AuditEvent(
                    id=next(event_ids),
                    at=at,
                    actor_id=actor_id,
                    actor_name=actor_name,
                    action=action,
                    ticket_id=ticket_id,
                    data=data,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        AuditEvent.objects.bulk_create(events, batch_size=INSERT_BATCH)
        head.last_hash = prev
        head.save(update_fields=["last_hash"])


def seed_history(
    count: int,
    users: dict[str, Any],
    rng: random.Random,
    progress: Callable[[str], Any] = lambda _: None,
) -> int:
    """Make sure ``count`` seeded tickets exist; returns how many were created now."""
    existing = Ticket.objects.filter(source="seed").count()
    todo = count - existing
    if todo <= 0:
        return 0
    envs = list(Environment.objects.order_by("position", "name"))
    now = timezone.now()
    seeder = _Seeder(users, rng, now)
    specs = _specs(todo, existing, rng, now, envs)
    with historical_timestamps():
        for start in range(0, len(specs), BATCH):
            _write_batch(seeder, specs[start : start + BATCH])
            done = min(start + BATCH, len(specs))
            if len(specs) > BATCH:
                progress(f"  {done}/{len(specs)} tickets")
    # Fresh planner statistics: after a bulk load the database would otherwise guess at
    # row counts and pick plans that are fine for an empty table (seconds, not ms, at 100k).
    # On PostgreSQL VACUUM also marks the pages all-visible, so that deep pages can step
    # over rows with index-only scans (deployments.api.support.pagination).
    with connection.cursor() as cursor:
        in_transaction = connection.in_atomic_block
        if connection.vendor == "postgresql" and not in_transaction:
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
    return todo
