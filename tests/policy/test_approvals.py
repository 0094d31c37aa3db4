"""Approval rules as pure functions: quorum exactly when the rule says, no self-approval,
nobody counted twice — over random roles, authors and approval orders."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments import policy
from deployments.policy import PolicyError, Rule, Vote

NOW = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)

ROLES = ["developer", "lead_developer", "tech_lead", "devops_lead", "qa", "operations"]
PROD = {"all_of": ["tech_lead", "devops_lead"]}
STAGING = {"any_of": ["lead_developer", "tech_lead"], "count": 1}
RULES = [
    PROD,
    STAGING,
    {"any_of": ["tech_lead", "devops_lead"], "count": 2},
    {"all_of": ["tech_lead"], "any_of": ["lead_developer", "devops_lead"], "count": 1},
]


def ticket(rule: dict[str, Any], author_id: int, name: str = "prod") -> Any:
    env = SimpleNamespace(name=name, approval_rule=rule, emergency_approval_rule={})
    return SimpleNamespace(
        environment=env, author_id=author_id, status="awaiting_approval", change_type="normal"
    )


def oracle(rule: Rule, people: list[frozenset[str]]) -> bool:
    """Independent brute force: can distinct people fill every slot?"""
    slots = rule.slots
    if len(people) < len(slots):
        return False
    for chosen in itertools.permutations(range(len(people)), len(slots)):
        if all(slots[i] & people[p] for i, p in enumerate(chosen)):
            return True
    return False


people_st = st.lists(st.frozensets(st.sampled_from(ROLES), max_size=3), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(rule=st.sampled_from(RULES), people=people_st, data=st.data())
def test_quorum_is_met_exactly_when_distinct_role_holders_can_fill_the_rule(
    rule: dict[str, Any], people: list[frozenset[str]], data: st.DataObject
) -> None:
    parsed = Rule.parse(rule)
    author = data.draw(st.integers(0, len(people) - 1), label="author")
    order = data.draw(st.permutations(range(len(people))), label="order")
    repeat = data.draw(st.lists(st.integers(0, len(people) - 1), max_size=4), label="retries")
    t = ticket(rule, author)
    votes: list[Vote] = []
    for person in [*order, *repeat]:
        if policy.quorum(parsed, votes).met:
            break
        try:
            role = policy.check_may_approve(
                t,
                user_id=person,
                username=f"p{person}",
                user_roles=people[person],
                votes=votes,
                has_current_plan=True,
                now=NOW,
            )
        except PolicyError as exc:
            assert exc.message  # every refusal is a sentence
            continue
        assert person != author, "the author approved their own ticket"
        assert person not in {v.approver_id for v in votes}, "one person counted twice"
        assert role in people[person] and role in parsed.roles
        votes.append(Vote(person, f"p{person}", people[person] & parsed.roles, role))
    state = policy.quorum(parsed, votes)
    others = [roles for i, roles in enumerate(people) if i != author]
    assert state.met == oracle(parsed, others)
    # Each counted vote fills its own slot with a role its approver holds.
    assert len(state.counted) == len(votes) == len({v.approver_id for v, _ in state.counted})
    assert all(role in vote.roles for vote, role in state.counted)


def test_prod_needs_two_different_people() -> None:
    both = frozenset({"tech_lead", "devops_lead"})
    t = ticket(PROD, author_id=9)
    role = policy.check_may_approve(
        t, user_id=1, username="dana", user_roles=both, votes=[], has_current_plan=True, now=NOW
    )
    votes = [Vote(1, "dana", both, role)]
    assert not policy.quorum(Rule.parse(PROD), votes).met
    with pytest.raises(PolicyError, match="you have already approved this plan"):
        policy.check_may_approve(
            t,
            user_id=1,
            username="dana",
            user_roles=both,
            votes=votes,
            has_current_plan=True,
            now=NOW,
        )


def test_refusal_names_who_holds_the_role_already() -> None:
    t = ticket(PROD, author_id=9)
    votes = [Vote(1, "dave", frozenset({"tech_lead"}), "tech_lead")]
    with pytest.raises(PolicyError) as err:
        policy.check_may_approve(
            t,
            user_id=2,
            username="tess",
            user_roles={"tech_lead"},
            votes=votes,
            has_current_plan=True,
            now=NOW,
        )
    assert err.value.message == "prod needs a DevOps Lead; dave already approved as Tech Lead"
    assert err.value.kind == PolicyError.ACTOR


def test_a_dual_role_approver_moves_to_the_role_only_they_can_fill() -> None:
    both = frozenset({"tech_lead", "devops_lead"})
    rule = Rule.parse(PROD)
    t = ticket(PROD, author_id=9)
    first = policy.check_may_approve(
        t, user_id=1, username="dana", user_roles=both, votes=[], has_current_plan=True, now=NOW
    )
    assert first == "tech_lead"
    votes = [Vote(1, "dana", both, first)]
    second = policy.check_may_approve(
        t,
        user_id=2,
        username="tess",
        user_roles={"tech_lead"},
        votes=votes,
        has_current_plan=True,
        now=NOW,
    )
    state = policy.quorum(rule, [*votes, Vote(2, "tess", frozenset({"tech_lead"}), second)])
    assert state.met
    assert {v.approver_name: r for v, r in state.counted} == {
        "dana": "devops_lead",
        "tess": "tech_lead",
    }


@pytest.mark.parametrize(
    ("status", "plan", "message"),
    [
        ("planning", True, "the plan is still running; approve it once it has finished"),
        ("plan_failed", False, "the last plan failed; there is no plan to approve"),
        ("approved", True, "this ticket is already approved"),
        ("completed", True, "a ticket that is completed cannot be approved"),
        ("awaiting_approval", False, "there is no successful plan to approve; run a new plan"),
    ],
)
def test_approval_needs_a_finished_plan_awaiting_approval(
    status: str, plan: bool, message: str
) -> None:
    t = ticket(PROD, author_id=9)
    t.status = status
    with pytest.raises(PolicyError) as err:
        policy.check_may_approve(
            t,
            user_id=1,
            username="tess",
            user_roles={"tech_lead"},
            votes=[],
            has_current_plan=plan,
            now=NOW,
        )
    assert err.value.message == message and err.value.kind == PolicyError.STATE


def test_author_is_refused_before_anything_else() -> None:
    with pytest.raises(PolicyError, match="you authored this ticket; someone else must approve it"):
        policy.check_may_approve(
            ticket(PROD, author_id=1),
            user_id=1,
            username="tess",
            user_roles={"tech_lead"},
            votes=[],
            has_current_plan=True,
            now=NOW,
        )


def test_emergency_tickets_use_the_emergency_rule() -> None:
    t = ticket(PROD, author_id=9)
    t.change_type = "emergency"
    t.environment.emergency_approval_rule = {"any_of": ["tech_lead", "devops_lead"], "count": 1}
    assert policy.rule_for(t, now=NOW).slots == (frozenset({"tech_lead", "devops_lead"}),)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"all_of": ["ceo"]}, "unknown role 'ceo'"),
        ({"any_of": ["qa"], "count": 0}, "any_of needs a count of at least 1"),
        ({"count": 2}, "count needs any_of"),
        ({"all_of": ["qa", "qa"]}, "all_of names a role twice"),
        ({"one_of": ["qa"]}, "unknown keys"),
        ({"any_of": ["qa"], "count": "2"}, "count must be a whole number"),
    ],
)
def test_rule_data_is_validated(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Rule.parse(data)
