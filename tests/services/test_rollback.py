"""Rollback to the last known good deployment: policy, API, the service's hook, actions by
state (issue 9). The end-to-end story on real Terraform is in test_rollback_flow.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from deployments import policy, selectors, services
from deployments.choices import ChangeType, RunKind, RunStatus, TicketStatus
from deployments.models import (
    AuditEvent,
    Deployment,
    Environment,
    FollowUp,
    Freeze,
    TerraformRun,
    Ticket,
)
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)  # a Friday: prod's window is shut


def _prod() -> Environment:
    return Environment.objects.get(name="prod")


def _deployed(
    author: User,
    *,
    at: dt.datetime,
    status: str = TicketStatus.MONITORING,
    outcome: str = "succeeded",
    env: Environment | None = None,
    **deployment: Any,
) -> Deployment:
    """A ticket of ``env`` (prod) deployed at ``at`` (its Deployment finished then)."""
    ticket = TicketFactory(
        environment=env or _prod(),
        author=author,
        status=status,
        deployed_at=at if outcome == "succeeded" else None,
    )
    return DeploymentFactory(ticket=ticket, finished_at=at, outcome=outcome, **deployment)


@pytest.fixture
def history(author: User) -> dict[str, Deployment]:
    """prod: A (good) at T0-3h, B (the one to roll back) at T0-10min."""
    good = _deployed(
        author,
        at=T0 - dt.timedelta(hours=3),
        status=TicketStatus.COMPLETED,
        var_file_sha256="a" * 64,
    )
    bad = _deployed(author, at=T0 - dt.timedelta(minutes=10))
    return {"good": good, "bad": bad}


def _roll_back(user: User, ticket: Ticket, **headers: str) -> Any:
    return api_for(user).post(f"/api/v1/tickets/{ticket.pk}/rollback/", **headers)


# --- policy (pure) -------------------------------------------------------------------


def test_rollback_mode_is_immediate_up_to_the_hour_inclusive() -> None:
    deployed = T0
    assert policy.rollback_mode(deployed, deployed) == "immediate"
    assert policy.rollback_mode(deployed, deployed + dt.timedelta(minutes=60)) == "immediate"
    late = deployed + dt.timedelta(minutes=60, seconds=1)
    assert policy.rollback_mode(deployed, late) == "planned"
    assert policy.rollback_mode(deployed, late, immediate_minutes=90) == "immediate"


def test_immediate_rollback_needs_one_lead_and_ignores_window_and_freezes() -> None:
    env = _prod()
    until = T0 + dt.timedelta(minutes=30)
    rollback = Ticket(
        environment=env,
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=until,
    )
    planned = Ticket(environment=env, change_type="rollback", rollback_mode="planned")
    normal = Ticket(environment=env, change_type="normal")
    immediate_rule = policy.rule_for(rollback, now=T0)
    assert immediate_rule.describe() == "1 approval from a DevOps Lead or Tech Lead"
    assert policy.rule_for(planned, now=T0) == policy.rule_for(normal, now=T0)
    assert policy.rule_for(planned, now=T0).all_of == ("tech_lead", "devops_lead")
    freeze = [Freeze(starts_at=T0 - dt.timedelta(hours=1), ends_at=T0 + dt.timedelta(hours=1))]
    policy.check_window(env, rollback, T0, freeze)  # outside the window, in a freeze: allowed
    for ticket in (planned, normal):
        with pytest.raises(policy.PolicyError, match="frozen"):
            policy.check_window(env, ticket, T0, freeze)
        with pytest.raises(policy.PolicyError, match="change window"):
            policy.check_window(env, ticket, T0, [])
    assert "immediate rollback" in policy.window_bypass_note(rollback, T0)
    assert policy.window_bypass_note(planned, T0) == ""
    # A hand-made "rollback" without the portal's mode gets no bypass at all, and neither
    # does an "immediate" one without a recorded hour.
    assert not policy.ignores_window(Ticket(environment=env, change_type="rollback"), T0)
    assert not policy.ignores_window(
        Ticket(environment=env, change_type="rollback", rollback_mode="immediate"), T0
    )
    # No promotion gate for rollbacks: the commit was in the environment already.
    assert not policy.promotion_applies(rollback) and not policy.promotion_applies(planned)


def test_an_immediate_rollback_past_its_hour_follows_the_planned_path() -> None:
    env = _prod()
    until = T0 + dt.timedelta(minutes=30)
    rollback = Ticket(
        environment=env,
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=until,
    )
    normal = Ticket(environment=env, change_type="normal")
    assert policy.is_immediate_rollback(rollback, until)  # the boundary itself counts
    later = until + dt.timedelta(seconds=1)
    assert not policy.is_immediate_rollback(rollback, later)
    assert policy.rollback_lapsed(rollback, later) and not policy.rollback_lapsed(rollback, until)
    assert policy.effective_rollback_mode(rollback, until) == "immediate"
    assert policy.effective_rollback_mode(rollback, later) == "planned"
    # The normal rule, the window and freezes: with the reason in every refusal.
    assert policy.rule_for(rollback, now=later) == policy.rule_for(normal, now=later)
    assert not policy.ignores_window(rollback, later)
    assert policy.window_bypass_note(rollback, later) == ""
    freeze = [Freeze(starts_at=T0, ends_at=T0 + dt.timedelta(hours=2), reason="audit")]
    with pytest.raises(policy.PolicyError, match=r"hour ended at .* frozen"):
        policy.check_window(env, rollback, later, freeze)
    with pytest.raises(policy.PolicyError, match=r"hour ended at .*change window"):
        policy.check_window(env, rollback, later, [])
    assert "planned path" in policy.rollback_lapse_note(rollback, later)
    assert policy.rollback_lapse_note(rollback, until) == ""
    # Scheduling asks the hour at the instant the apply would start.
    with pytest.raises(policy.PolicyError, match="outside prod's change window"):
        policy.check_may_schedule(
            Ticket(
                environment=env,
                change_type="rollback",
                rollback_mode="immediate",
                rollback_immediate_until=until,
                status=TicketStatus.APPROVED,
            ),
            user_roles={"operations"},
            at=later,
            now=T0,
        )
    # One lead's approval, enough within the hour, is not enough after it: the ticket takes
    # the approval it lacks (it is approved, yet short of the rule of now).
    approved = Ticket(
        environment=env,
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=until,
        status=TicketStatus.APPROVED,
        author_id=99,
    )
    votes = [policy.Vote(1, "tess", frozenset({"tech_lead"}), "tech_lead")]
    assert not policy.needs_more_approval(approved, votes, now=until)
    assert policy.needs_more_approval(approved, votes, now=later)
    with pytest.raises(policy.PolicyError, match="already approved"):
        policy.check_may_approve(
            approved,
            user_id=2,
            username="otto",
            user_roles={"devops_lead"},
            votes=votes,
            has_current_plan=True,
            now=until,
        )
    role = policy.check_may_approve(
        approved,
        user_id=2,
        username="otto",
        user_roles={"devops_lead"},
        votes=votes,
        has_current_plan=True,
        now=later,
    )
    assert role == "devops_lead"
    with pytest.raises(policy.PolicyError, match=r"hour ended.*still needs a DevOps Lead"):
        policy.check_may_deploy(
            approved,
            user_roles={"operations"},
            now=later,
            pending="a DevOps Lead",
            quorum_met=False,
        )
    # The worker's start-time check: inside a window, the approvals no longer hold.
    thursday = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)
    approved.rollback_immediate_until = thursday - dt.timedelta(hours=1)
    with pytest.raises(policy.ApplyRefused, match="hour ended") as refused:
        policy.check_apply_may_start(
            approved,
            now=thursday,
            plan_sha256="b" * 64,
            current_plan_sha256="b" * 64,
            votes=votes,
        )
    assert refused.value.back_to == TicketStatus.AWAITING_APPROVAL


def test_immediate_rollback_in_an_environment_without_approvals_needs_none() -> None:
    dev = Environment.objects.get(name="dev")
    rollback = Ticket(
        environment=dev,
        change_type="rollback",
        rollback_mode="immediate",
        rollback_immediate_until=T0,
    )
    assert not policy.rule_for(rollback, now=T0).required


# --- choosing the last known good --------------------------------------------------------


def test_last_known_good_skips_failed_rolled_back_and_monitoring_failed(author: User) -> None:
    def at(hours: float) -> dt.datetime:
        return T0 - dt.timedelta(hours=hours)

    good = _deployed(author, at=at(10), status=TicketStatus.COMPLETED)
    _deployed(author, at=at(8), outcome="failed", status=TicketStatus.APPLY_FAILED)
    undone = _deployed(author, at=at(6), status=TicketStatus.COMPLETED)
    undone.rolled_back_at = at(5)
    undone.save()
    _deployed(author, at=at(4), status=TicketStatus.COMPLETED, monitoring_failed_at=at(3.5))
    _deployed(author, at=at(3), status=TicketStatus.ROLLED_BACK)
    dev_newer = _deployed(author, at=at(2), env=Environment.objects.get(name="dev"))
    bad = _deployed(author, at=at(1))
    choice = selectors.rollback_choice(bad.ticket)
    assert choice.target is not None
    assert (choice.target.deployment_id, choice.target.commit_sha) == (good.pk, good.commit_sha)
    assert choice.own is not None and choice.own.pk == bad.pk
    assert dev_newer.environment.name == "dev"  # another environment never counts
    # Nothing before the oldest: no target.
    assert selectors.rollback_choice(good.ticket).target is None


# --- the API -----------------------------------------------------------------------------


def test_operations_opens_an_immediate_rollback(
    history: dict[str, Deployment], operations: User, tech_lead: User
) -> None:
    bad, good = history["bad"], history["good"]
    with time_machine.travel(T0, tick=False):
        response = _roll_back(operations, bad.ticket)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["change_type"] == "rollback" and body["rollback_of"] == bad.ticket_id
    assert body["commit_sha"] == good.commit_sha and body["author"] == operations.username
    assert body["rollback_mode"] == "immediate" and body["status"] == "planning"
    assert body["rollback_target"]["deployment"] == good.pk
    assert body["rollback_target"]["var_file_sha256"] == "a" * 64
    assert body["rollback_plan"]["last_known_good"]["ticket"] == good.ticket_id
    assert f"deployment #{good.pk}" in body["description"]
    assert f"deployment #{good.pk}" in body["rollback_plan"]["steps"]
    assert body["approval_status"]["rule"] == "1 approval from a DevOps Lead or Tech Lead"
    rollback = Ticket.objects.get(pk=body["id"])
    plan = TerraformRun.objects.get(ticket=rollback)
    assert plan.kind == RunKind.PLAN and plan.status == RunStatus.QUEUED
    assert (plan.commit_sha, plan.var_file) == (good.commit_sha, good.var_file)
    created = AuditEvent.objects.get(ticket=rollback, action="ticket.create")
    assert created.data["rollback_mode"] == "immediate" and "outside" in created.data["reason"]
    assert AuditEvent.objects.filter(ticket=bad.ticket, action="rollback.open").exists()
    told = Notification.objects.filter(event="rollback.opened", ticket=rollback)
    assert tech_lead in {n.recipient for n in told}


def test_a_rollback_opened_after_the_hour_is_planned(
    history: dict[str, Deployment], tech_lead: User
) -> None:
    deployed = history["bad"].finished_at
    with time_machine.travel(deployed + dt.timedelta(minutes=60, seconds=1), tick=False):
        response = _roll_back(tech_lead, history["bad"].ticket)
    assert response.status_code == 201, response.json()
    assert response.json()["rollback_mode"] == "planned"
    assert "Tech Lead and DevOps Lead" in response.json()["approval_status"]["rule"]


def test_rollback_conflicts_name_the_reason(
    history: dict[str, Deployment], author: User, operations: User
) -> None:
    good, bad = history["good"], history["bad"]
    # The oldest deployment has nothing before it.
    refused = _roll_back(operations, good.ticket)
    assert refused.status_code == 409
    assert "ticket #" in refused.json()["detail"] or "no earlier" in refused.json()["detail"]
    # Never deployed.
    waiting = TicketFactory(environment=_prod(), author=author)
    refused = _roll_back(operations, waiting)
    assert refused.status_code == 409 and "never deployed" in refused.json()["detail"]
    # One is opened; a second is refused naming the first.
    first = _roll_back(operations, bad.ticket)
    assert first.status_code == 201
    again = _roll_back(operations, bad.ticket)
    assert again.status_code == 409
    assert again.json()["rollback"] == first.json()["id"]
    assert f"#{first.json()['id']}" in again.json()["detail"]
    # A rollback ticket itself is not rolled back.
    rollback = Ticket.objects.get(pk=first.json()["id"])
    assert _roll_back(operations, rollback).status_code == 409
    assert Ticket.objects.filter(change_type="rollback").count() == 1


def test_a_later_deployment_must_be_rolled_back_first(
    history: dict[str, Deployment], author: User, operations: User
) -> None:
    later = _deployed(author, at=T0 - dt.timedelta(minutes=5))
    refused = _roll_back(operations, history["bad"].ticket)
    assert refused.status_code == 409
    assert f"ticket #{later.ticket_id} deployed to prod after this one" in refused.json()["detail"]


def test_after_a_rollback_to_it_the_target_itself_may_be_rolled_back(
    author: User, operations: User
) -> None:
    older = _deployed(author, at=T0 - dt.timedelta(hours=5), status=TicketStatus.COMPLETED)
    target = _deployed(author, at=T0 - dt.timedelta(hours=3), status=TicketStatus.COMPLETED)
    undone = _deployed(author, at=T0 - dt.timedelta(hours=2), status=TicketStatus.ROLLED_BACK)
    rollback = TicketFactory(
        environment=_prod(),
        author=operations,
        change_type="rollback",
        rollback_of=undone.ticket,
        rollback_target=target,
        rollback_mode="immediate",
        status=TicketStatus.MONITORING,
    )
    DeploymentFactory(ticket=rollback, finished_at=T0 - dt.timedelta(hours=1))
    opened = _roll_back(operations, target.ticket)
    assert opened.status_code == 201, opened.json()
    assert opened.json()["rollback_target"]["deployment"] == older.pk


def test_no_earlier_good_deployment_is_409(author: User, operations: User) -> None:
    only = _deployed(author, at=T0)
    refused = _roll_back(operations, only.ticket)
    assert refused.status_code == 409
    assert "no earlier good deployment of prod" in refused.json()["detail"]


def test_who_may_roll_back(
    history: dict[str, Deployment],
    author: User,
    developer: User,
    devops_lead: User,
    qa: User,
    outsider: User,
) -> None:
    bad = history["bad"]
    # The author (a developer) sees the ticket but may not roll prod back: 403.
    refused = _roll_back(author, bad.ticket)
    assert refused.status_code == 403 and "rollbacks are opened by" in refused.json()["detail"]
    # Prod is invisible to other developers, QA and outsiders: 404.
    for user in (developer, qa, outsider):
        assert _roll_back(user, bad.ticket).status_code == 404, user.username
    assert not Ticket.objects.filter(change_type="rollback").exists()
    assert _roll_back(devops_lead, bad.ticket).status_code == 201


def test_idempotency_key_replays_the_rollback(
    history: dict[str, Deployment], operations: User
) -> None:
    first = _roll_back(operations, history["bad"].ticket, HTTP_IDEMPOTENCY_KEY="rb-1")
    replay = _roll_back(operations, history["bad"].ticket, HTTP_IDEMPOTENCY_KEY="rb-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert Ticket.objects.filter(change_type="rollback").count() == 1


def test_rollback_tickets_are_not_filed_by_hand(author: User) -> None:
    response = api_for(author).post(
        "/api/v1/tickets/",
        {"title": "sneaky", "environment": "dev", "change_type": "rollback"},
        format="json",
    )
    assert response.status_code == 400
    assert "rollback is opened from the ticket it rolls back" in response.json()["detail"]


def test_the_rollback_author_may_not_approve_it(
    history: dict[str, Deployment], devops_lead: User
) -> None:
    opened = _roll_back(devops_lead, history["bad"].ticket)
    rollback = Ticket.objects.get(pk=opened.json()["id"])
    plan = RunFactory(ticket=rollback, plan_sha256="b" * 64)
    Ticket.objects.filter(pk=rollback.pk).update(
        status=TicketStatus.AWAITING_APPROVAL, current_plan=plan
    )
    refused = api_for(devops_lead).post(
        f"/api/v1/tickets/{rollback.pk}/approve/", {"plan_sha256": "b" * 64}, format="json"
    )
    assert refused.status_code == 403 and "you authored this ticket" in refused.json()["detail"]


# --- actions follow the ticket's state ------------------------------------------------------


def test_available_actions_follow_state(
    history: dict[str, Deployment], author: User, operations: User
) -> None:
    bad = history["bad"]
    ops_actions = api_for(operations).get(f"/api/v1/tickets/{bad.ticket_id}/").json()
    assert ops_actions["available_actions"] == ["rollback"]
    mine = api_for(author).get(f"/api/v1/tickets/{bad.ticket_id}/").json()["available_actions"]
    assert "cancel" not in mine and "rollback" not in mine  # monitoring: no cancel
    refused = api_for(author).post(f"/api/v1/tickets/{bad.ticket_id}/cancel/", {}, format="json")
    assert refused.status_code == 409
    applying = TicketFactory(environment=_prod(), author=author, status=TicketStatus.APPLYING)
    assert api_for(author).get(f"/api/v1/tickets/{applying.pk}/").json()["available_actions"] == []
    waiting = TicketFactory(environment=_prod(), author=author)
    assert (
        "cancel"
        in api_for(author).get(f"/api/v1/tickets/{waiting.pk}/").json()["available_actions"]
    )
    # The page offers the same: the rollback section with the target, no cancel button.
    client = _client(operations)
    html = client.get(f"/tickets/{bad.ticket_id}/").content.decode()
    assert 'id="rollback-button"' in html and history["good"].commit_sha[:12] in html
    assert "Cancel ticket" not in html
    # The author sees the section (the monitoring banner links to it) and who may act.
    html = _client(author).get(f"/tickets/{bad.ticket_id}/").content.decode()
    assert 'id="rollback-why"' in html and "prod rollbacks are opened by" in html
    # The oldest deployment: the section says why there is nothing to roll back to.
    html = client.get(f"/tickets/{history['good'].ticket_id}/").content.decode()
    assert 'id="rollback-why"' in html and 'id="rollback-button"' not in html


def _client(user: User) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_the_confirm_page_files_nothing_until_confirmed(
    history: dict[str, Deployment], operations: User
) -> None:
    client = _client(operations)
    bad, good = history["bad"], history["good"]
    page = client.get(f"/tickets/{bad.ticket_id}/rollback/").content.decode()
    assert good.commit_sha in page and 'id="rollback-confirm"' in page
    assert f"ticket #{good.ticket_id}" in page
    assert not Ticket.objects.filter(change_type="rollback").exists()
    response = client.post(f"/tickets/{bad.ticket_id}/rollback/")
    rollback = Ticket.objects.get(change_type="rollback")
    assert response.status_code == 302 and response["Location"] == f"/tickets/{rollback.pk}/"
    assert rollback.source == "web"


# --- when the rollback deploys --------------------------------------------------------------


def test_a_deployed_rollback_ends_the_original_and_owes_a_post_mortem(
    history: dict[str, Deployment], operations: User, tech_lead: User
) -> None:
    bad, good = history["bad"], history["good"]
    opened = _roll_back(operations, bad.ticket)
    rollback = Ticket.objects.get(pk=opened.json()["id"])
    finished = T0 + dt.timedelta(minutes=20)
    apply = RunFactory(
        ticket=rollback,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        plan=RunFactory(ticket=rollback),
        finished_at=finished,
    )
    mine = DeploymentFactory(ticket=rollback, run=apply, finished_at=finished)
    Ticket.objects.filter(pk=rollback.pk).update(status=TicketStatus.MONITORING)
    with transaction.atomic():
        services.rollback_deployed(services.locked_ticket(rollback.pk), apply)
    bad.refresh_from_db()
    original = bad.ticket
    original.refresh_from_db()
    assert original.status == TicketStatus.ROLLED_BACK
    assert f"rolled back by ticket #{rollback.pk}" in original.status_reason
    assert bad.rolled_back_at == finished and bad.rolled_back_by == mine
    follow_up = FollowUp.objects.get(ticket=original)
    assert follow_up.kind == "post_mortem" and follow_up.deployment_run == apply
    assert follow_up.due_at == finished + dt.timedelta(hours=24)
    sent = Notification.objects.filter(event="rollback.deployed")
    assert {n.recipient.username for n in sent} >= {tech_lead.username}
    assert AuditEvent.objects.filter(ticket=original, action="rollback.deployed").exists()
    # B no longer counts as good; A is still the last known good.
    assert selectors.last_known_good(_prod(), finished).deployment_id in (mine.pk, good.pk)
    assert not Deployment.objects.get(pk=bad.pk).is_good
    # The post-mortem shows with the follow-up form and label, and in the API.
    html = _client(tech_lead).get(f"/tickets/{original.pk}/").content.decode()
    assert "Post-mortem" in html and f'id="follow-up-{follow_up.pk}-form"' in html
    data = api_for(tech_lead).get(f"/api/v1/tickets/{original.pk}/").json()
    assert [f["kind"] for f in data["follow_ups"]] == ["post_mortem"]
    assert data["available_actions"] == []
    # A normal ticket's deploy is not a rollback: nothing happens to anyone.
    other = _deployed(operations, at=finished, status=TicketStatus.MONITORING)
    with transaction.atomic():
        services.rollback_deployed(other.ticket, other.run)
    assert FollowUp.objects.count() == 1


def test_overdue_post_mortems_are_flagged_and_reminded(
    history: dict[str, Deployment], devops_lead: User
) -> None:
    original = history["bad"].ticket
    with transaction.atomic():
        services.follow_up_open(
            ticket=original,
            kind="post_mortem",
            due_at=timezone.now() - dt.timedelta(hours=1),
            actor="worker",
        )
    assert services.follow_ups_remind() == 1
    assert Notification.objects.filter(event="followup.overdue").exists()
    html = _client(devops_lead).get(f"/tickets/{original.pk}/").content.decode()
    assert "overdue" in html and "Complete post-mortem" in html
    assert ChangeType.ROLLBACK == "rollback"
