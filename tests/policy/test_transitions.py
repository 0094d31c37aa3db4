"""The status machine is data, and the database refuses impossible rows."""

import itertools

import pytest
from django.db import IntegrityError, transaction

from deployments import policy
from deployments.choices import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    RunKind,
    RunStatus,
    TicketStatus,
)
from deployments.models import Environment, Ticket
from tests.helpers.factories import RunFactory, TicketFactory

PAIRS = list(itertools.product(TicketStatus, TicketStatus))


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_check_transition_allows_exactly_the_table(
    current: TicketStatus, target: TicketStatus
) -> None:
    if target in ALLOWED_TRANSITIONS[current]:
        policy.check_transition(current, target)
    else:
        with pytest.raises(policy.PolicyError) as err:
            policy.check_transition(current, target)
        assert "cannot become" in err.value.message


def test_every_status_has_a_row_and_terminal_states_are_final() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(TicketStatus)
    assert {
        TicketStatus.REJECTED,
        TicketStatus.CANCELLED,
        TicketStatus.ROLLED_BACK,
    } == TERMINAL_STATUSES


def test_database_refuses_an_unknown_ticket_status(db: None) -> None:
    ticket = TicketFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(status="shipped")


def test_database_refuses_a_commit_that_is_not_40_hex(db: None) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketFactory(commit_sha="main")


def test_database_allows_one_active_apply_per_environment(db: None) -> None:
    plan = RunFactory()
    RunFactory(kind=RunKind.APPLY, status=RunStatus.RUNNING, plan=plan)
    other_plan = RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(
            ticket=other_plan.ticket, kind=RunKind.APPLY, status=RunStatus.QUEUED, plan=other_plan
        )
    # A finished apply does not hold the environment.
    RunFactory(
        ticket=other_plan.ticket, kind=RunKind.APPLY, status=RunStatus.FAILED, plan=other_plan
    )


def test_database_requires_apply_runs_to_name_their_plan(db: None) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(kind=RunKind.APPLY, plan=None)


def test_seeded_environments_carry_the_process_policy(db: None) -> None:
    envs = {env.name: env for env in Environment.objects.all()}
    assert list(envs) == ["dev", "staging", "prod"]
    assert envs["dev"].approval_rule == {} and envs["dev"].auto_deploy
    assert envs["staging"].approval_rule == {"any_of": ["lead_developer", "tech_lead"], "count": 1}
    assert envs["prod"].approval_rule == {"all_of": ["tech_lead", "devops_lead"]}
    assert envs["prod"].deploy_groups == ["operations"]
    assert envs["prod"].window_days == [2, 4]
    assert envs["prod"].monitoring_minutes == 60
    assert all(
        env.var_file == f"environments/{name}/terraform.tfvars" for name, env in envs.items()
    )


def test_an_apply_refused_at_start_goes_back_but_applying_is_never_cancelled() -> None:
    # The worker's start-time re-check sends it back before Terraform runs (issue 6).
    policy.check_transition(TicketStatus.APPLYING, TicketStatus.APPROVED)
    policy.check_transition(TicketStatus.APPLYING, TicketStatus.AWAITING_APPROVAL)
    for target in (TicketStatus.CANCELLED, TicketStatus.PLANNING, TicketStatus.REJECTED):
        with pytest.raises(policy.PolicyError):
            policy.check_transition(TicketStatus.APPLYING, target)
