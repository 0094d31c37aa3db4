"""The pure rules over policy results: status, refusals, who may override (no database)."""

from __future__ import annotations

import pytest

from deployments.policy import ApplyRefused, PolicyError
from deployments.policy.plan_policies import (
    PolicyFinding,
    applies_to,
    check_apply_policies,
    check_may_override,
    check_plan_policies,
    outcome_of,
    override_needs,
    policy_status,
    stricter,
)

HARD_FAIL = PolicyFinding("tags", "repo", "hard", "fail", ("x lacks the tags owner",))
SOFT_FAIL = PolicyFinding("data_protection", "repo", "soft", "fail", ("db would be destroyed",))
ADVISORY_FAIL = PolicyFinding("change_window", "repo", "advisory", "fail", ("outside",))
ERROR = PolicyFinding("broken", "repo", "hard", "error", ("broken.rego:3:1: unclosed",))
PASS = PolicyFinding("public_s3", "repo", "hard", "pass")
WARN = PolicyFinding("sizes", "portal", "soft", "warn", ("big",))
SHA = "a" * 64


def test_status_orders_blocked_override_warnings_passed() -> None:
    assert policy_status(None) is None
    assert policy_status([]) == "passed"
    assert policy_status([PASS]) == "passed"
    assert policy_status([PASS, WARN]) == "warnings"
    assert policy_status([PASS, ADVISORY_FAIL]) == "warnings"
    assert policy_status([SOFT_FAIL, ADVISORY_FAIL]) == "override_needed"
    assert policy_status([SOFT_FAIL], {"data_protection"}) == "warnings"
    assert policy_status([SOFT_FAIL, HARD_FAIL], {"data_protection"}) == "blocked"
    # An error fails closed whatever level its policy declared.
    assert policy_status([PolicyFinding("x", "repo", "advisory", "error")]) == "blocked"


def test_levels_and_outcomes() -> None:
    assert stricter("soft", "hard") == "hard"
    assert stricter("hard", "advisory") == "hard"
    assert stricter("advisory", "soft") == "soft"
    assert outcome_of(deny=["a"], warn=["b"], error="") == "fail"
    assert outcome_of(deny=[], warn=["b"], error="") == "warn"
    assert outcome_of(deny=[], warn=[], error="") == "pass"
    assert outcome_of(deny=["a"], warn=[], error="boom") == "error"
    assert applies_to([], "prod") and applies_to(["*"], "dev")
    assert applies_to(["prod"], "prod") and not applies_to(["prod"], "dev")


def test_refusals_name_the_policies_and_their_messages() -> None:
    check_plan_policies(None)
    check_plan_policies([PASS, WARN, ADVISORY_FAIL])
    with pytest.raises(PolicyError) as hard:
        check_plan_policies([PASS, HARD_FAIL, SOFT_FAIL])
    assert hard.value.kind == PolicyError.STATE
    assert "policy tags (repo, hard) failed: x lacks the tags owner" in hard.value.message
    assert [p["policy"] for p in hard.value.data["policies"]] == ["tags", "data_protection"]
    with pytest.raises(PolicyError, match="an override by DevOps Lead with a reason"):
        check_plan_policies([SOFT_FAIL])
    check_plan_policies([SOFT_FAIL], {"data_protection"})
    with pytest.raises(ApplyRefused, match=r"could not be evaluated: broken\.rego:3:1"):
        check_apply_policies([ERROR])


def _override(**overrides: object) -> PolicyFinding:
    args: dict[str, object] = {
        "policy_name": "data_protection",
        "plan_sha256": SHA,
        "current_plan_sha256": SHA,
        "user_id": 2,
        "author_id": 1,
        "user_roles": {"devops_lead"},
        "overridden": set(),
    }
    args.update(overrides)
    return check_may_override([SOFT_FAIL, HARD_FAIL, PASS], **args)  # type: ignore[arg-type]


def test_who_may_override_what() -> None:
    assert _override() == SOFT_FAIL
    with pytest.raises(PolicyError, match="not the ticket's current plan"):
        _override(plan_sha256="b" * 64)
    with pytest.raises(PolicyError, match="no successful plan"):
        _override(current_plan_sha256="")
    with pytest.raises(PolicyError, match="cannot be overridden"):
        _override(policy_name="tags")
    with pytest.raises(PolicyError, match="nothing to override"):
        _override(policy_name="public_s3")
    with pytest.raises(PolicyError, match="no policy named"):
        _override(policy_name="nope")
    with pytest.raises(PolicyError, match="already overridden"):
        _override(overridden={"data_protection"})
    with pytest.raises(PolicyError, match="author") as author:
        _override(user_id=1)
    assert author.value.kind == PolicyError.ACTOR
    with pytest.raises(PolicyError, match="only a DevOps Lead") as role:
        _override(user_roles={"tech_lead"})
    assert role.value.kind == PolicyError.ACTOR
    named = PolicyFinding("p", "repo", "soft", "fail", ("m",), override_role="tech_lead")
    assert (
        check_may_override(
            [named],
            policy_name="p",
            plan_sha256=SHA,
            current_plan_sha256=SHA,
            user_id=2,
            author_id=1,
            user_roles={"tech_lead"},
        )
        == named
    )
    assert override_needs([named, SOFT_FAIL], {"data_protection"}) == [
        {"policy": "p", "role": "tech_lead", "role_label": "Tech Lead"}
    ]
