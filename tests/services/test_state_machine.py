"""The ticket lifecycle as a state machine: random people doing random things in random order.

Hypothesis files tickets in every environment (normal and emergency), finishes, fails,
stalls and crashes runs the way a worker would (without Terraform: an apply is claimed as
the worker claims it, under the environment lock and after the start-time re-check),
approves with the current or a stale plan digest, re-plans, deploys inside and outside the
prod window, adds and removes approvers' roles, cancels, rejects and reconciles, and after
every step checks the promises of the change-control process:

- applied digest = approved digest: every standing approval of a ticket names the plan
  that its apply applies, at the moment the apply is queued and again at the moment it
  starts (when the quorum, by the roles held then, and the window must hold too);
- standing approvals always name the ticket's current plan (a new plan voids them);
- a ticket that is approved has a quorum of distinct, non-author approvers who held the
  roles the rule asks for when approving, and an apply starts only while they still hold
  them (checked here independently of ``policy.quorum``);
- at most one apply per environment is queued or running, and an apply whose worker
  lives (holds the environment lock, however long it is silent) is never interrupted;
  one whose worker crashed is, at the reconciler's next pass;
- every status change is a ``ticket.transition`` audit event: the events' from/to chain
  reproduces the ticket's observed status history, and ``verify_audit`` passes.

Database only (no Terraform, no worker process, no broker). The services are called
through the adapters below, so signature changes are adapted in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from deployments import policy, services
from deployments import terraform as tf
from deployments.choices import (
    ACTIVE_RUN_STATUSES,
    ALLOWED_TRANSITIONS,
    REPLANNABLE_STATUSES,
    TERMINAL_STATUSES,
    RunKind,
    RunStatus,
    TicketStatus,
)
from deployments.lib.locks import EnvironmentLock
from deployments.models import Approval, AuditEvent, Environment, TerraformRun, Ticket
from deployments.services import audit
from deployments.services.runs import claim

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

# --- adapters: the one place to follow service signature changes ---------------------

# Refusals are expected outcomes of random actions; any other exception fails the test.
EXPECTED: tuple[type[BaseException], ...] = (policy.PolicyError, services.InputError)

COMMIT = "c0ffee" + "0" * 34
START = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # a Monday, outside the prod window

PERSONAS: dict[str, tuple[str, ...]] = {
    "dev_a": ("developer",),
    "dev_b": ("developer",),
    "lead": ("lead_developer",),
    "tech": ("tech_lead",),
    "devops": ("devops_lead",),
    "dual": ("tech_lead", "devops_lead"),  # one person, two roles: counts once
    "qa": ("qa",),
    "ops": ("operations",),
    "nobody": (),
}


ANYONE = st.sampled_from(sorted(PERSONAS))
# Anyone at all, with those who may approve (or deploy) drawn more often, so that
# examples get somewhere; refusals of the others stay part of every run. Hypothesis
# starts from the first choice of each list, so the productive one comes first.
# "author" is the ticket's own author (who must never count as an approver); "fit" is
# someone who holds, now, a role the ticket's rule asks for and has not approved it yet
# (so that prod tickets, which need two people, get approved in some examples).
APPROVER = st.one_of(
    st.just("fit"), st.sampled_from(["tech", "devops", "dual", "lead"]), st.just("author"), ANYONE
)
# "deployer" is whoever the ticket's environment lets deploy (ops in prod, a lead elsewhere).
DEPLOYER = st.one_of(st.just("deployer"), ANYONE)
ACTOR = st.one_of(ANYONE, APPROVER)
# What a worker does with the run an action queued: often at once (a free worker, so
# examples get deep), else it waits for the worker rule (a busy one).
# "running": the worker is still at it (or stalled) when the next step comes.
THEN = st.sampled_from(["ok", "pending", "ok", "failed", "crashed", "running"])
# Mostly act on a ticket in a state where the action can succeed (see Lifecycle._ticket).
AIM = st.sampled_from([True, True, True, False])


class _Repo:
    """The infrastructure repository as ticket_create sees it: one commit, no git."""

    def branch_tip(self, branch: str) -> str:
        return COMMIT

    def has_commit(self, sha: str) -> bool:
        return sha == COMMIT


def _accepts(service: Any, name: str) -> bool:
    return name in inspect.signature(service).parameters


def _file(actor: User, env: str, change_type: str) -> Ticket:
    return services.ticket_create(
        actor=actor,
        data=services.TicketInput(
            title=f"{change_type} change in {env}",
            environment=env,
            change_type=change_type,
            description="Resize the web tier.",
            risk_assessment={"impact": "low", "likelihood": "low", "summary": "reversible"},
            rollback_plan={"steps": "apply the previous commit"},
        ),
    )


def _replan(ticket_id: int, actor: User, reason: str) -> TerraformRun:
    if _accepts(services.ticket_plan, "reason"):
        return services.ticket_plan(ticket_id=ticket_id, actor=actor, reason=reason)  # type: ignore[call-arg]
    return services.ticket_plan(ticket_id=ticket_id, actor=actor)


def _approve(ticket_id: int, actor: User, plan_sha256: str) -> Approval:
    return services.approval_grant(
        ticket_id=ticket_id, actor=actor, comment="reviewed", plan_sha256=plan_sha256
    )


def _deploy(ticket_id: int, actor: User) -> TerraformRun:
    return services.ticket_deploy(ticket_id=ticket_id, actor=actor)


def _cancel(ticket_id: int, actor: User) -> Ticket:
    return services.ticket_cancel(ticket_id=ticket_id, actor=actor, reason="no longer needed")


def _reject(ticket_id: int, actor: User) -> Any:
    return services.ticket_reject(ticket_id=ticket_id, actor=actor, reason="too risky today")


def _claim(run: TerraformRun) -> tuple[int, EnvironmentLock | None] | None:
    """Claim a queued run as run_execute does: (its fencing token, the environment lock the
    worker then holds), or None when it was not started. A plan or check is a guarded
    update; an apply is claimed under the environment lock, after the worker's start-time
    re-check (window, standing approvals and their roles, plan digest)."""
    if run.kind != RunKind.APPLY:
        return (0, None) if claim.claim(run.pk, worker="machine@test", fence=0) else None
    lock = EnvironmentLock(run.environment_id)
    # Nobody else can hold it: a second apply in the environment cannot even be queued.
    assert lock.try_acquire(), f"the environment of apply {run.pk} is locked"
    fence = claim.claim_apply(run.pk, worker="machine@test")
    if fence is None:
        lock.release()
        return None
    return fence, lock


def _finish(run: TerraformRun, *, ok: bool, serial: int, fence: int = 0) -> None:
    """What the worker records after Terraform ran (a plan brings its saved plan file)."""
    plan = None
    exit_code, error = (0, "") if ok else (1, f"simulated {run.kind} failure")
    if run.kind == RunKind.PLAN and ok:
        body = f"plan file {serial} of run {run.pk}".encode()
        plan = tf.PlanResult(
            exit_code=0,
            plan_bytes=body,
            plan_sha256=hashlib.sha256(body).hexdigest(),
            summary={"add": 1, "change": 0, "destroy": 0, "resources": []},
            has_changes=True,
        )
    if run.kind == RunKind.CHECK and not ok:
        exit_code, error = 2, "the post-apply plan still shows changes"
    services.run_finish(
        run_id=run.pk,
        exit_code=exit_code,
        error=error,
        plan=plan,
        stale=False,
        terraform_version="1.11.4",
        fence=fence,
    )


# --- independent checks ---------------------------------------------------------------


def _quorum_met(ticket: Ticket, approvals: list[Approval], *, roles_now: bool = True) -> bool:
    """Distinct non-authors, each filling a slot with a role recorded on the approval and,
    with ``roles_now``, still held (an approver removed from the role since no longer
    counts)."""
    rule = policy.rule_for(ticket, now=timezone.now())
    people: dict[int, set[str]] = {}
    for approval in approvals:
        if approval.approver_id == ticket.author_id or approval.approver_id in people:
            return False
        held = set(approval.held_roles)
        if approval.role not in held:
            return False
        if roles_now:
            held &= set(approval.approver.groups.values_list("name", flat=True))
        people[approval.approver_id] = held
    slots = rule.slots
    return any(
        all(slot & people[person] for slot, person in zip(slots, chosen, strict=True))
        for chosen in itertools.permutations(people, len(slots))
    )


# What the examples reached (printed with -s): proof that the machine gets somewhere.
REACHED: Counter[str] = Counter()


def _is_subsequence(seen: list[str], chain: list[str]) -> bool:
    it = iter(chain)
    return all(status in it for status in seen)


class Lifecycle(RuleBasedStateMachine):
    """One example: fresh people, an empty portal, a clock that only moves forward."""

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # rolled back in teardown: each example starts empty
        self._travel = time_machine.travel(START, tick=True)
        self._clock = self._travel.start()
        self.users: dict[str, User] = {}
        for name, roles in PERSONAS.items():
            user = User.objects.create_user(username=name, password="pw")
            user.groups.set(Group.objects.filter(name__in=roles))
            self.users[name] = user
        self.tickets: list[int] = []
        self.seen_applies: set[int] = set()
        # Runs a live worker is still at: their fencing token and, for an apply, the
        # environment lock it holds (a stalled worker's too: it is alive).
        self.live: dict[int, tuple[int, EnvironmentLock | None]] = {}
        self.fences: dict[int, int] = {}  # every claimed run's token, for a late report
        self.reported: set[int] = set()  # interrupted runs whose worker reported late
        self.history: dict[int, list[str]] = {}
        self.serial = 0

    def teardown(self) -> None:
        REACHED["examples"] += 1
        for _fence, lock in self.live.values():
            if lock is not None:
                lock.release()
        self._travel.stop()
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ---

    def _ticket(self, index: int, aim: bool, statuses: Any = ()) -> Ticket:
        """Any ticket, or, when aiming, one in a state where the action can succeed (so
        examples get past the first refusal; the people acting stay random)."""
        tickets = Ticket.objects.filter(pk__in=self.tickets).order_by("id")
        if aim and statuses and tickets.filter(status__in=statuses).exists():
            tickets = tickets.filter(status__in=statuses)
        ids = list(tickets.values_list("pk", flat=True))
        return Ticket.objects.select_related("environment", "current_plan").get(
            pk=ids[index % len(ids)]
        )

    def _user(self, who: str, ticket: Ticket) -> User:
        """A persona by name; "author" is the ticket's author, "deployer" whoever its
        environment lets deploy (operations in prod, a lead elsewhere)."""
        if who == "author":
            return ticket.author
        if who == "fit":
            slots = policy.rule_for(ticket, now=timezone.now()).slots
            standing = Approval.objects.filter(ticket=ticket, voided_at__isnull=True)
            taken = {ticket.author_id, *standing.values_list("approver_id", flat=True)}
            for name in ("tech", "devops", "lead", "dual"):
                user = self.users[name]
                roles = set(user.groups.values_list("name", flat=True))
                if user.pk not in taken and any(slot & roles for slot in slots):
                    return user
            who = "tech"
        if who == "deployer":
            who = "ops" if ticket.environment.name == "prod" else "lead"
        return self.users[who]

    def _try(self, name: str, action: Any) -> Any:
        try:
            result = action()
        except EXPECTED:
            REACHED[f"{name} refused"] += 1
            return None
        REACHED[f"{name} done"] += 1
        return result

    def _move_clock(self, *, in_window: bool) -> None:
        prod = Environment.objects.get(name="prod")
        now = timezone.now()
        inside = policy.in_window(prod, now)
        if in_window and not inside:
            start = policy.next_window_start(prod, now)
            assert start is not None
            self._clock.move_to(start + dt.timedelta(minutes=5))
        elif not in_window and inside:
            self._clock.shift(dt.timedelta(hours=3))  # windows are two hours long

    # --- rules ---

    @initialize(
        who=st.sampled_from(["dev_a", "lead", "tech", "ops"]),
        env=st.sampled_from(["prod", "staging", "dev", "prod"]),
        change_type=st.sampled_from(["normal", "normal", "emergency"]),
    )
    def a_first_ticket_with_its_plan(self, who: str, env: str, change_type: str) -> None:
        """Every example starts with a planned ticket (Hypothesis's swarm testing turns
        rules off per example; this gives even a worker-less example something to do)."""
        self.file(who, env, change_type, then="ok")

    @precondition(
        lambda self: (
            Ticket.objects.filter(pk__in=self.tickets).exclude(status__in=TERMINAL_STATUSES).count()
            < 3
        )
    )
    @rule(
        who=ANYONE,
        env=st.sampled_from(["prod", "staging", "dev", "prod"]),
        change_type=st.sampled_from(["normal", "normal", "emergency"]),
        then=THEN,
    )
    def file(self, who: str, env: str, change_type: str, then: str = "pending") -> None:
        ticket = self._try("file", lambda: _file(self.users[who], env, change_type))
        if ticket is not None:
            self.tickets.append(ticket.pk)
            self._work(self._queued(ticket.pk, RunKind.PLAN), then)

    def _queued(self, ticket_id: int, kind: str) -> TerraformRun | None:
        runs = TerraformRun.objects.filter(ticket_id=ticket_id, kind=kind)
        return runs.filter(status=RunStatus.QUEUED).order_by("-id").first()

    def _late(self) -> list[int]:
        interrupted = TerraformRun.objects.filter(status=RunStatus.INTERRUPTED)
        return list(interrupted.exclude(pk__in=self.reported).values_list("pk", flat=True))

    def _has_work(self) -> bool:
        active = TerraformRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).exists()
        return active or bool(self._late())

    @precondition(_has_work)
    @rule(
        index=st.integers(min_value=0, max_value=50),
        kind=st.sampled_from([RunKind.PLAN, RunKind.PLAN, RunKind.APPLY, RunKind.CHECK]),
        outcome=st.sampled_from(["ok", "ok", "ok", "failed", "crashed", "late report"]),
    )
    def worker(self, index: int, kind: str, outcome: str) -> None:
        """A worker finishes, fails or dies during a run (preferably one of ``kind``); or
        a worker declared lost reports its run's outcome after all."""
        late = self._late()
        if outcome == "late report" and late:
            run = TerraformRun.objects.get(pk=late[index % len(late)])
            self.reported.add(run.pk)
            self.serial += 1
            fence = self.fences.get(run.pk, 0)
            self._try(
                "late report",
                lambda: _finish(run, ok=index % 2 == 0, serial=self.serial, fence=fence),
            )
            return
        active = TerraformRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).order_by("id")
        if not active.exists():
            return
        if active.filter(kind=kind).exists():
            active = active.filter(kind=kind)
        runs = list(active)
        self._work(runs[index % len(runs)], outcome)

    def _work(self, run: TerraformRun | None, outcome: str) -> None:
        """Claim a queued run and end it: ``ok``, ``failed``, ``crashed``; ``pending``
        leaves it queued (a busy worker) and ``running`` leaves it running (a slow or
        stalled worker) for the worker rule."""
        if run is None or outcome == "pending":
            return
        if run.status == RunStatus.QUEUED:
            claimed = _claim(run)
            if claimed is None:
                run.refresh_from_db()
                if run.status == RunStatus.CANCELLED:
                    REACHED["apply refused at start"] += 1
                return
            self.live[run.pk] = claimed
            self.fences[run.pk] = claimed[0]
            if run.kind == RunKind.APPLY:
                self._apply_may_start(run)
        if outcome == "running":
            return
        fence, lock = self.live.pop(run.pk, (0, None))
        if outcome == "crashed":
            self._crash(run, lock)
            return
        self.serial += 1
        ok = outcome == "ok"
        try:
            self._try(
                f"finish {run.kind}", lambda: _finish(run, ok=ok, serial=self.serial, fence=fence)
            )
        finally:
            if lock is not None:
                lock.release()  # run_execute releases it once the outcome is recorded

    def _crash(self, run: TerraformRun, lock: EnvironmentLock | None) -> None:
        """The worker died mid-run: its process, and with it the environment lock, is gone."""
        if lock is None:  # a plan or check: the reconciler goes by the heartbeat
            self._try("crash", lambda: services.run_interrupt(run_id=run.pk, reason="killed"))
            return
        lock.release()
        services.runs_reconcile()  # the next beat: no heartbeat timeout to wait for
        run.refresh_from_db()
        assert run.status == RunStatus.INTERRUPTED, f"crashed apply {run.pk} is {run.status}"
        REACHED["crashed apply interrupted"] += 1

    def _apply_may_start(self, run: TerraformRun) -> None:
        """Checked independently when the worker has started an apply: the window is open
        (or it is an emergency), and the standing approvals name the plan it applies and
        make a quorum by the roles their approvers hold now."""
        run = TerraformRun.objects.select_related("plan", "ticket__environment").get(pk=run.pk)
        ticket, plan = run.ticket, run.plan
        assert plan is not None and ticket.current_plan_id == plan.pk
        env = ticket.environment
        assert ticket.change_type == "emergency" or policy.in_window(env, timezone.now()), (
            f"apply {run.pk} started outside the {env.name} window"
        )
        standing = list(
            Approval.objects.filter(ticket=ticket, voided_at__isnull=True).select_related(
                "approver"
            )
        )
        assert {(a.plan_run_id, a.plan_sha256) for a in standing} <= {(plan.pk, plan.plan_sha256)}
        if policy.rule_for(ticket, now=timezone.now()).required and not env.auto_deploy:
            assert _quorum_met(ticket, standing), f"apply {run.pk} started without a quorum"
        REACHED[f"apply started in {env.name}"] += 1

    @precondition(lambda self: self.tickets)
    @rule(
        index=st.integers(min_value=0, max_value=50),
        aim=AIM,
        who=APPROVER,
        digest=st.sampled_from(["current", "current", "current", "stale", "unknown"]),
    )
    def approve(self, index: int, aim: bool, who: str, digest: str) -> None:
        ticket = self._ticket(index, aim, [TicketStatus.AWAITING_APPROVAL])
        current = ticket.current_plan.plan_sha256 if ticket.current_plan else ""
        older = (
            TerraformRun.objects.filter(ticket=ticket, kind=RunKind.PLAN)
            .exclude(plan_sha256__in=["", current])
            .order_by("-id")
            .values_list("plan_sha256", flat=True)
            .first()
        )
        sha = {
            "current": current or hashlib.sha256(b"no plan").hexdigest(),
            "stale": older or hashlib.sha256(b"never planned").hexdigest(),
            "unknown": hashlib.sha256(b"never planned").hexdigest(),
        }[digest]
        approval = self._try(
            f"approve ({digest} digest)", lambda: _approve(ticket.pk, self._user(who, ticket), sha)
        )
        if approval is not None:
            # Never bound to a plan other than the one the approver reviewed.
            assert approval.plan_sha256 == sha, (approval.plan_sha256, sha)
            assert approval.plan_run_id == ticket.current_plan_id

    @precondition(lambda self: self.tickets)
    @rule(index=st.integers(min_value=0, max_value=50), aim=AIM, who=ACTOR, then=THEN)
    def replan(self, index: int, aim: bool, who: str, then: str) -> None:
        ticket = self._ticket(index, aim, REPLANNABLE_STATUSES)
        run = self._try("replan", lambda: _replan(ticket.pk, self._user(who, ticket), "new commit"))
        if run is not None:
            self._work(self._queued(ticket.pk, RunKind.PLAN), then)

    @precondition(lambda self: self.tickets)
    @rule(
        index=st.integers(min_value=0, max_value=50),
        aim=AIM,
        who=DEPLOYER,
        in_window=st.sampled_from([True, True, False]),
        then=THEN,
    )
    def deploy(self, index: int, aim: bool, who: str, in_window: bool, then: str) -> None:
        ticket = self._ticket(index, aim, [TicketStatus.APPROVED, TicketStatus.SCHEDULED])
        self._move_clock(in_window=in_window)
        run = self._try("deploy", lambda: _deploy(ticket.pk, self._user(who, ticket)))
        if run is not None:
            self._work(self._queued(ticket.pk, RunKind.APPLY), then)

    @precondition(lambda self: self.tickets)
    @rule(
        index=st.integers(min_value=0, max_value=50),
        aim=AIM,
        who=ACTOR,
        how=st.sampled_from(["cancel", "reject"]),
    )
    def withdraw(self, index: int, aim: bool, who: str, how: str) -> None:
        """Cancel (author or a lead) or reject (an approver): the ticket ends here."""
        if how == "cancel":
            ticket = self._ticket(index, False)
            self._try("cancel", lambda: _cancel(ticket.pk, self._user(who, ticket)))
            return
        statuses = [TicketStatus.AWAITING_APPROVAL, TicketStatus.APPROVED]
        ticket = self._ticket(index, aim, statuses)
        self._try("reject", lambda: _reject(ticket.pk, self._user(who, ticket)))

    @rule(
        who=st.sampled_from(["tech", "devops", "dual", "lead"]),
        role=st.sampled_from(["tech_lead", "devops_lead", "lead_developer"]),
        gain=st.booleans(),
    )
    def a_role_changes(self, who: str, role: str, gain: bool) -> None:
        """An admin adds a role to, or takes one from, someone who may have approved."""
        group = Group.objects.get(name=role)
        user = self.users[who]
        if gain:
            user.groups.add(group)
        else:
            user.groups.remove(group)
        REACHED[f"role {'added' if gain else 'removed'}"] += 1

    @rule(minutes=st.integers(min_value=1, max_value=3 * 24 * 60))
    def time_passes_and_the_reconciler_runs(self, minutes: int) -> None:
        self._clock.shift(dt.timedelta(minutes=minutes))
        services.runs_reconcile()

    # --- invariants ---

    @invariant()
    def applied_digest_is_the_approved_digest(self) -> None:
        new = TerraformRun.objects.filter(kind=RunKind.APPLY).exclude(pk__in=self.seen_applies)
        for run in new.select_related("plan", "ticket__environment"):
            self.seen_applies.add(run.pk)
            ticket, plan = run.ticket, run.plan
            REACHED[f"apply queued in {ticket.environment.name}"] += 1
            assert plan is not None and plan.ticket_id == ticket.pk
            assert plan.status == RunStatus.SUCCEEDED and plan.plan_sha256, plan
            assert ticket.current_plan_id == plan.pk, "an apply of a plan that was replaced"
            standing = list(
                Approval.objects.filter(ticket=ticket, voided_at__isnull=True).select_related(
                    "approver"
                )
            )
            for approval in standing:
                assert approval.plan_sha256 == plan.plan_sha256, (approval, plan.plan_sha256)
                assert approval.plan_run_id == plan.pk
            if (
                policy.rule_for(ticket, now=timezone.now()).required
                and not ticket.environment.auto_deploy
            ):
                assert _quorum_met(ticket, standing), f"apply {run.pk} without a quorum"

    @invariant()
    def an_approved_ticket_has_its_quorum(self) -> None:
        for ticket in Ticket.objects.filter(
            pk__in=self.tickets, status=TicketStatus.APPROVED
        ).select_related("environment", "current_plan"):
            if (
                not policy.rule_for(ticket, now=timezone.now()).required
                or ticket.environment.auto_deploy
            ):
                continue
            standing = list(
                Approval.objects.filter(ticket=ticket, voided_at__isnull=True).select_related(
                    "approver"
                )
            )
            # By the roles held when approving: one removed since is caught when deploy is
            # requested and again when the apply starts.
            assert _quorum_met(ticket, standing, roles_now=False), (
                f"ticket {ticket.pk} approved without quorum"
            )
            assert ticket.current_plan is not None
            assert {a.plan_sha256 for a in standing} == {ticket.current_plan.plan_sha256}

    @invariant()
    def standing_approvals_name_the_current_plan(self) -> None:
        """A new plan voids earlier approvals at once: none stands for a plan replaced."""
        standing = Approval.objects.filter(ticket_id__in=self.tickets, voided_at__isnull=True)
        for approval in standing.select_related("ticket__current_plan"):
            plan = approval.ticket.current_plan
            assert plan is not None, f"{approval} stands while the ticket has no plan"
            assert (approval.plan_run_id, approval.plan_sha256) == (plan.pk, plan.plan_sha256), (
                f"{approval} names plan {approval.plan_run_id}, the current plan is {plan.pk}"
            )

    @invariant()
    def at_most_one_apply_per_environment(self) -> None:
        busy = (
            TerraformRun.objects.filter(kind=RunKind.APPLY, status__in=ACTIVE_RUN_STATUSES)
            .values("environment")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not busy.exists(), list(busy)
        applying = (
            Ticket.objects.filter(status=TicketStatus.APPLYING)
            .values("environment")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not applying.exists(), list(applying)

    @invariant()
    def a_live_worker_keeps_its_apply(self) -> None:
        """However long a worker holding the environment lock is silent (time passes, the
        reconciler runs), its apply stays running under its fencing token."""
        for run_id, (fence, lock) in self.live.items():
            if lock is None:
                continue
            run = TerraformRun.objects.get(pk=run_id)
            assert (run.status, run.fence) == (RunStatus.RUNNING, fence), (run_id, run.status)

    @invariant()
    def every_status_change_is_audited(self) -> None:
        for pk, status in Ticket.objects.filter(pk__in=self.tickets).values_list("pk", "status"):
            seen = self.history.setdefault(pk, [])
            if not seen or seen[-1] != status:
                seen.append(status)
                REACHED[f"ticket {status}"] += 1
            moves = list(
                AuditEvent.objects.filter(ticket_id=pk, action="ticket.transition")
                .order_by("id")
                .values_list("data", flat=True)
            )
            assert moves, f"ticket {pk} has no audited transition"
            chain = [moves[0]["from"]] + [move["to"] for move in moves]
            assert chain[0] == TicketStatus.DRAFT
            for before, move in zip(chain, moves, strict=False):
                assert move["from"] == before, (pk, chain)
                assert TicketStatus(move["to"]) in ALLOWED_TRANSITIONS[TicketStatus(before)]
            assert chain[-1] == status, (pk, chain, status)
            assert _is_subsequence(seen, chain), (pk, seen, chain)

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        REACHED["steps"] += 1
        report = audit.audit_check()
        assert report.ok, report.message


@pytest.fixture
def machine_env(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    """No broker, no git, plan files under the test's own folder."""
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    monkeypatch.setattr(services.tickets, "infra_repo", lambda: _Repo())
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


def test_the_lifecycle_keeps_its_promises(machine_env: None) -> None:
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print("\n".join(f"{n:6} {what}" for what, n in sorted(REACHED.items())))
