"""Risk scoring (pure), the questionnaire and rollback plan at the boundary, the level in the
approval rule, and the last known good deployment."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from deployments import policy, selectors, services
from deployments.choices import RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, Ticket
from deployments.policy import data_resources, risk
from tests.helpers.api import api_for
from tests.helpers.factories import (
    RISK_OK,
    ROLLBACK_OK,
    DeploymentFactory,
    TicketFactory,
)
from tests.helpers.risk import destructive_plan
from tests.helpers.users import persona

# --- pure scoring ------------------------------------------------------------------


def _res(address: str, action: str, rtype: str = "", module: str = "") -> dict[str, str]:
    return {"address": address, "type": rtype, "module": module, "action": action}


def test_components_from_module_names_and_resource_types() -> None:
    summary = {
        "resources": [
            _res(
                "module.database.null_resource.instance",
                "create",
                "null_resource",
                "module.database",
            ),
            _res(
                "module.media_bucket.null_resource.bucket",
                "update",
                "null_resource",
                "module.media_bucket",
            ),
            _res(
                "aws_elasticache_replication_group.main",
                "create",
                "aws_elasticache_replication_group",
            ),
            _res("aws_lambda_function.processor", "create", "aws_lambda_function"),
            _res("aws_cloudwatch_metric_alarm.main", "create", "aws_cloudwatch_metric_alarm"),
            _res("aws_lb.app", "create", "aws_lb"),
            _res("aws_vpc.main", "no-op", "aws_vpc"),
        ]
    }
    blast = risk.blast_radius(summary)
    assert blast["components"] == [
        "compute",
        "database",
        "cache",
        "storage",
        "processing",
        "monitoring",
    ]
    assert blast["destructive"] is False


def test_replacing_a_database_is_high_whatever_the_answers() -> None:
    q = {"impact": "low", "likelihood": "low", "summary": "s", "tested_in_staging": True}
    summary = {
        "resources": [
            _res(
                "module.database.aws_db_instance.main",
                "replace",
                "aws_db_instance",
                "module.database",
            )
        ]
    }
    out = risk.assess(q, summary)
    why = data_resources.DATA_RESOURCE_TYPES["aws_db_instance"]
    assert out["level"] == "high"
    assert out["reasons"][0] == (
        f"high: replaces module.database.aws_db_instance.main (database): {why}"
    )
    assert out["blast_radius"]["replaces"] == [
        {
            "address": "module.database.aws_db_instance.main",
            "component": "database",
            "data_reason": why,
        }
    ]


def test_deleting_a_bucket_or_replacing_a_cache_is_high_and_a_subnet_group_is_not() -> None:
    q = {"impact": "low", "likelihood": "low", "summary": "s", "tested_in_staging": True}
    bucket = {"resources": [_res("aws_s3_bucket.media", "delete", "aws_s3_bucket")]}
    assert risk.assess(q, bucket)["level"] == "high"
    assert (
        "high: deletes aws_s3_bucket.media (storage): an S3 bucket: every object and version in it"
        in risk.assess(q, bucket)["reasons"]
    )
    # A cache with snapshots holds data (issue 18): its replacement loses them.
    cache = {
        "resources": [
            _res(
                "aws_elasticache_replication_group.main",
                "replace",
                "aws_elasticache_replication_group",
            )
        ]
    }
    assert risk.assess(q, cache)["level"] == "high"
    # The database's subnet group is in the database component, but holds no data.
    subnets = {
        "resources": [
            _res("module.database.aws_db_subnet_group.main", "delete", "aws_db_subnet_group")
        ]
    }
    out = risk.assess(q, subnets)
    assert (out["level"], out["reasons"][0]) == ("low", "low: score 4")
    assert out["blast_radius"]["deletes"][0]["data_reason"] == ""


def test_scores_and_levels_of_answers() -> None:
    low = risk.score({"impact": "low", "likelihood": "low", "tested_in_staging": True}, None)
    assert (low.score, low.level) == (1, "low")
    assert low.reasons[0] == "low: score 1"
    medium = risk.score({"impact": "medium", "likelihood": "medium", "customer_facing": True}, None)
    assert (medium.score, medium.level) == (8, "medium")  # 4 + 2 + 2 (untested)
    assert "not tested in staging: +2" in medium.reasons
    worst = risk.score({"impact": "high", "likelihood": "high"}, None)
    assert worst.level == "high" and worst.reasons[0].startswith("high: the author rates")
    migration = risk.score(
        {
            "impact": "medium",
            "likelihood": "high",
            "data_migration": True,
            "downtime_expected": True,
        },
        None,
    )
    assert (migration.score, migration.level) == (14, "high")


_LEVEL = st.sampled_from(risk.LEVELS)
_ANSWERS = st.fixed_dictionaries(
    {
        "impact": _LEVEL,
        "likelihood": _LEVEL,
        "data_migration": st.booleans(),
        "downtime_expected": st.booleans(),
        "customer_facing": st.booleans(),
        "tested_in_staging": st.booleans(),
    }
)
_ACTIONS = st.sampled_from(["create", "update", "forget", "delete", "replace"])
_ADDRESSES = st.sampled_from(
    [
        ("module.database.null_resource.instance", "null_resource", "module.database"),
        ("module.database.aws_db_instance.main", "aws_db_instance", "module.database"),
        ("module.database.aws_db_subnet_group.main", "aws_db_subnet_group", "module.database"),
        ("aws_kms_key.media", "aws_kms_key", ""),
        ("aws_sqs_queue.jobs", "aws_sqs_queue", ""),
        ("module.media_bucket.null_resource.bucket", "null_resource", "module.media_bucket"),
        ("module.cache.null_resource.cluster", "null_resource", "module.cache"),
        ("aws_vpc.main", "aws_vpc", ""),
        ("aws_lambda_function.processor", "aws_lambda_function", ""),
        ("module.alarms.null_resource.app_cpu", "null_resource", "module.alarms"),
    ]
)
_PLAN = st.lists(st.tuples(_ADDRESSES, _ACTIONS), max_size=6)
_RANK = {level: i for i, level in enumerate(risk.LEVELS)}
_WORSE = {
    "create": ("update", "forget", "delete", "replace"),
    "update": ("forget", "delete", "replace"),
    "forget": ("delete", "replace"),
    "delete": ("replace",),
    "replace": (),
}


def _summary(plan: list[tuple[tuple[str, str, str], str]]) -> dict[str, Any]:
    return {"resources": [_res(a, action, t, m) for (a, t, m), action in plan]}


def _worse_answers(q: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    riskier = dict(q)
    key = data.draw(st.sampled_from(sorted(q)))
    if key in ("impact", "likelihood"):
        riskier[key] = data.draw(st.sampled_from(risk.LEVELS[_RANK[q[key]] :]))
    elif key == "tested_in_staging":
        riskier[key] = False
    else:
        riskier[key] = True
    return riskier


@given(q=_ANSWERS, plan=_PLAN, data=st.data())
def test_a_riskier_answer_never_lowers_the_score_or_level(
    q: dict[str, Any], plan: Any, data: st.DataObject
) -> None:
    before = risk.assess(q, _summary(plan))
    after = risk.assess(_worse_answers(q, data), _summary(plan))
    assert after["score"] >= before["score"]
    assert _RANK[after["level"]] >= _RANK[before["level"]]


@given(q=_ANSWERS, plan=_PLAN, extra=_PLAN, data=st.data())
def test_a_more_destructive_plan_never_lowers_the_score_or_level(
    q: dict[str, Any], plan: Any, extra: Any, data: st.DataObject
) -> None:
    before = risk.assess(q, _summary(plan))
    # More destructive: more resources changed, or an action made worse.
    worse = list(plan) + list(extra)
    if plan:
        i = data.draw(st.integers(0, len(plan) - 1))
        (address, action) = plan[i]
        if _WORSE[action]:
            worse[i] = (address, data.draw(st.sampled_from(_WORSE[action])))
    after = risk.assess(q, _summary(worse))
    assert after["score"] >= before["score"]
    assert _RANK[after["level"]] >= _RANK[before["level"]]


@given(q=_ANSWERS, plan=_PLAN)
def test_an_environment_that_names_more_data_never_lowers_the_level(
    q: dict[str, Any], plan: Any
) -> None:
    extra = data_resources.parse_extra(data_resources.SAMPLE_STACK_EXTRA)
    before = risk.assess(q, _summary(plan))
    after = risk.assess(q, _summary(plan), extra)
    assert after["score"] == before["score"]
    assert _RANK[after["level"]] >= _RANK[before["level"]]


# --- the boundary ------------------------------------------------------------------


def _prod(user: User, **extra: Any) -> Any:
    body = {
        "title": "Scale prod",
        "environment": "prod",
        "description": "four app servers",
        "risk_assessment": RISK_OK,
        "rollback_plan": ROLLBACK_OK,
        **extra,
    }
    return api_for(user).post("/api/v1/tickets/", body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        (
            {"risk_assessment": {**RISK_OK, "impact": "catastrophic"}},
            "risk_assessment.impact",
            "valid choice",
        ),
        (
            {"risk_assessment": {**RISK_OK, "likelihood": None}},
            "risk_assessment.likelihood",
            "null",
        ),
        (
            {"risk_assessment": {k: v for k, v in RISK_OK.items() if k != "impact"}},
            "risk_assessment.impact",
            "required",
        ),
        (
            {"risk_assessment": {**RISK_OK, "summary": "   "}},
            "risk_assessment.summary",
            "may not be blank",
        ),
        (
            {"risk_assessment": {**RISK_OK, "summary": "s" * 2001}},
            "risk_assessment.summary",
            "2000",
        ),
        (
            {"risk_assessment": {**RISK_OK, "customer_facing": "maybe"}},
            "risk_assessment.customer_facing",
            "boolean",
        ),
        ({"risk_assessment": {**RISK_OK, "notes": "x"}}, "risk_assessment.notes", "unknown field"),
        ({"risk_assessment": {"x": ""}}, "risk_assessment.x", "unknown field"),
        ({"risk_assessment": "high"}, "risk_assessment", "JSON object"),
        (
            {"rollback_plan": {**ROLLBACK_OK, "expected_minutes": -1}},
            "rollback_plan.expected_minutes",
            "greater than or equal to 0",
        ),
        (
            {"rollback_plan": {**ROLLBACK_OK, "expected_minutes": "soon"}},
            "rollback_plan.expected_minutes",
            "valid integer",
        ),
        ({"rollback_plan": {"expected_minutes": 5}}, "rollback_plan.steps", "required"),
        ({"rollback_plan": {**ROLLBACK_OK, "owner": "me"}}, "rollback_plan.owner", "unknown field"),
        ({"risk_assessment": None}, "risk_assessment", "prod tickets need risk_assessment"),
        ({"rollback_plan": None}, "rollback_plan", "prod tickets need rollback_plan"),
        ({"description": ""}, "description", "prod tickets need description"),
    ],
)
def test_prod_ticket_fields_are_checked_one_by_one(
    author: User, infra_repo: Any, patch: dict[str, Any], field: str, words: str
) -> None:
    response = _prod(author, **patch)
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: "), detail
    assert words in detail
    assert not Ticket.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_service_checks_the_questionnaire_too(author: User, infra_repo: Any) -> None:
    with pytest.raises(services.InputError) as refused:
        services.ticket_create(
            actor=author,
            data=services.TicketInput(
                title="t",
                environment="prod",
                description="d",
                risk_assessment={**RISK_OK, "impact": "huge"},
                rollback_plan=ROLLBACK_OK,
            ),
        )
    assert refused.value.field == "risk_assessment.impact"
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_a_valid_prod_ticket_is_stored_structured_and_scored(
    author: User, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    response = _prod(author)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["risk_assessment"] == {
        "impact": "low",
        "likelihood": "low",
        "summary": RISK_OK["summary"],
        "data_migration": False,
        "downtime_expected": False,
        "customer_facing": False,
        "tested_in_staging": True,
        "score": 1,
        "level": "low",
        "reasons": ["low: score 1", "impact low x likelihood low: +1"],
        "blast_radius": {
            "components": [],
            "destructive": False,
            "deletes": [],
            "replaces": [],
            "delete_count": 0,
            "replace_count": 0,
            "forgets": [],
            "imports": [],
            "moves": [],
            "invocations": [],
            "forget_count": 0,
            "import_count": 0,
            "move_count": 0,
            "invoke_count": 0,
        },
        "plan_run": None,
    }
    assert body["rollback_plan"] == {**ROLLBACK_OK, "last_known_good": None}
    assert AuditEvent.objects.filter(action="ticket.risk").count() == 1


@pytest.mark.django_db
def test_the_form_shows_field_errors_inline(author: User, infra_repo: Any) -> None:
    client = Client()
    client.force_login(author)
    page = client.get("/tickets/new/")
    assert b"Required for prod" in page.content and b'id="change-details"' in page.content
    # The note says what the service requires (risk.clean_rollback_plan), no more.
    assert (
        "rollback steps; the expected rollback time and data considerations are optional"
        in page.content.decode()
    )
    data = {
        "title": "Scale",
        "environment": "prod",
        "change_type": "normal",
        "description": "d",
        "risk_impact": "high",
        "risk_summary": "",
        "rollback_steps": "revert",
    }
    response = client.post("/tickets/new/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["risk_likelihood"] == ["Choose how likely it is to go wrong."]
    assert not Ticket.objects.exists()
    response = client.post("/tickets/new/", {**data, "risk_likelihood": "low"})
    assert response.context["form"].errors["risk_summary"] == [
        "Say what could go wrong and how you would notice."
    ]
    response = client.post(
        "/tickets/new/", {**data, "risk_likelihood": "low", "rollback_expected_minutes": "-1"}
    )
    assert response.context["form"].errors["rollback_expected_minutes"]
    response = client.post(
        "/tickets/new/", {k: v for k, v in data.items() if not k.startswith(("risk_", "rollback_"))}
    )
    errors = response.context["form"].errors
    # Each missing field under itself, in plain words (issue 22), never the API's keys.
    assert errors["risk_impact"] == ["Choose the impact if this change goes wrong."]
    assert errors["rollback_steps"] == ["Write the steps that undo this change."]
    assert "risk_assessment" not in str(errors) and "rollback_plan" not in str(errors)
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_the_form_files_a_prod_ticket_with_its_questionnaire(
    author: User, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    client = Client()
    client.force_login(author)
    response = client.post(
        "/tickets/new/",
        {
            "title": "Scale",
            "environment": "prod",
            "change_type": "normal",
            "description": "d",
            "risk_impact": "medium",
            "risk_likelihood": "low",
            "risk_summary": "more servers",
            "risk_customer_facing": "on",
            "rollback_steps": "revert",
            "rollback_expected_minutes": "15",
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.risk_assessment == {
        "impact": "medium",
        "likelihood": "low",
        "summary": "more servers",
        "data_migration": False,
        "downtime_expected": False,
        "customer_facing": True,
        "tested_in_staging": False,
    }
    assert ticket.rollback_plan == {
        "steps": "revert",
        "expected_minutes": 15,
        "data_considerations": "",
    }
    assert ticket.risk["level"] == "medium" and ticket.risk["score"] == 6


@pytest.mark.django_db
def test_the_form_files_a_prod_ticket_without_the_optional_rollback_fields(
    author: User, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    client = Client()
    client.force_login(author)
    response = client.post(
        "/tickets/new/",
        {
            "title": "Scale",
            "environment": "prod",
            "change_type": "normal",
            "description": "d",
            "risk_impact": "low",
            "risk_likelihood": "low",
            "risk_summary": "more servers",
            "rollback_steps": "revert",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    assert Ticket.objects.get().rollback_plan == {
        "steps": "revert",
        "expected_minutes": None,
        "data_considerations": "",
    }


# --- the level in the approval rule --------------------------------------------------


def _approve(user: User, ticket: Ticket) -> Any:
    plan = Ticket.objects.get(pk=ticket.pk).current_plan
    return api_for(user).post(
        f"/api/v1/tickets/{ticket.pk}/approve/", {"plan_sha256": plan.plan_sha256}, format="json"
    )


@pytest.mark.usefixtures("without_promotion_gate")
@pytest.mark.django_db
def test_a_high_risk_prod_ticket_needs_a_third_lead(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = destructive_plan(
        TicketFactory(
            environment=Environment.objects.get(name="prod"),
            author=author,
            risk_assessment=RISK_OK,
            rollback_plan=ROLLBACK_OK,
        )
    )
    assert _approve(tech_lead, ticket).status_code == 200
    second = _approve(devops_lead, ticket)
    assert second.status_code == 200
    body = second.json()
    assert body["status"] == "awaiting_approval"
    assert body["risk_assessment"]["level"] == "high"
    assert body["approval_status"]["missing"] == ["DevOps Lead or Tech Lead"]
    assert body["approval_status"]["risk_note"] == (
        "the assessed risk is high, so this prod ticket needs Tech Lead and DevOps Lead, two "
        "different people; plus 1 approval from a Tech Lead or DevOps Lead instead of Tech Lead "
        "and DevOps Lead, two different people"
    )
    third = _approve(persona("tara", "tech_lead"), ticket)
    assert third.status_code == 200 and third.json()["status"] == "approved"


@pytest.mark.usefixtures("without_promotion_gate")
@pytest.mark.django_db
def test_the_approver_reads_the_risk_and_rollback_plan_above_the_approve_button(
    author: User, tech_lead: User
) -> None:
    ticket = destructive_plan(
        TicketFactory(
            environment=Environment.objects.get(name="prod"),
            author=author,
            description="A bigger database for the campaign.",
            pull_request_url="https://git.example.com/infra/pull/42",
            risk_assessment=RISK_OK,
            rollback_plan=ROLLBACK_OK,
        )
    )
    client = Client()
    client.force_login(tech_lead)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    approve = html.index('id="approve-form"')
    for shown in (
        "A bigger database for the campaign.",
        'id="risk-level">high<',
        "high: replaces module.database.aws_db_instance.main (database): an RDS database",
        'id="risk-note">The assessed risk is high, so this prod ticket needs',
        'id="blast-radius"',
        str(RISK_OK["summary"]),
        str(ROLLBACK_OK["steps"]),
        "10 minutes",
        'id="risk-pr"',
        'id="last-known-good"',
    ):
        assert shown in html, shown
        assert html.index(shown) < approve, f"{shown} is below the approve button"


@pytest.mark.django_db
def test_a_high_risk_emergency_needs_both_leads(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = destructive_plan(
        TicketFactory(
            environment=Environment.objects.get(name="prod"),
            author=author,
            change_type="emergency",
            risk_assessment=RISK_OK,
            rollback_plan=ROLLBACK_OK,
        )
    )
    first = _approve(tech_lead, ticket)
    assert first.json()["status"] == "awaiting_approval"
    assert first.json()["approval_status"]["missing"] == ["DevOps Lead"]
    assert _approve(devops_lead, ticket).json()["status"] == "approved"


@pytest.mark.django_db
def test_an_emergency_its_environment_does_not_escalate_needs_either_lead(
    author: User, tech_lead: User
) -> None:
    """Scored high for the record, but only the answers prod lists escalate an emergency
    (docs/incidents.md): here none of them holds."""
    Environment.objects.filter(name="prod").update(emergency_escalating_answers=["data_migration"])
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"), author=author, change_type="emergency"
    )
    ticket = destructive_plan(ticket)
    assert ticket.risk["level"] == "high"
    assert _approve(tech_lead, ticket).json()["status"] == "approved"


@pytest.mark.django_db
def test_risk_rules_are_validated_with_the_environment() -> None:
    from deployments.services.environments import environment_validate

    env = Environment.objects.get(name="prod")
    assert policy.parse_risk_rules(env.risk_rules)["high"]["approval_rule"].count == 1
    for bad, words in [
        ({"severe": {}}, "unknown risk level"),
        ({"high": {"rule": {}}}, "unknown keys"),
        (
            {"high": {"approval_rule": {"all_of": ["ceo"]}}},
            "risk_rules.high.approval_rule: unknown role",
        ),
        (["high"], "object keyed by risk level"),
    ]:
        env.risk_rules = bad
        with pytest.raises(services.InputError) as refused:
            environment_validate(env)
        assert refused.value.field == "risk_rules" and words in refused.value.message


# --- last known good -------------------------------------------------------------


@pytest.mark.django_db
def test_last_known_good_is_the_newest_earlier_successful_apply() -> None:
    import datetime as dt

    from django.utils import timezone

    prod = Environment.objects.get(name="prod")
    now = timezone.now()

    def deployed(
        status: str, minutes_ago: int, outcome: str = RunStatus.SUCCEEDED, **kw: Any
    ) -> Ticket:
        ticket = TicketFactory(environment=prod, status=status)
        DeploymentFactory(
            ticket=ticket,
            outcome=outcome,
            finished_at=now - dt.timedelta(minutes=minutes_ago),
            **kw,
        )
        return ticket

    good = deployed(TicketStatus.COMPLETED, 50)
    deployed(TicketStatus.ROLLED_BACK, 40)
    deployed(TicketStatus.APPLY_FAILED, 30)
    deployed(TicketStatus.COMPLETED, 25, monitoring_failed_at=now)
    deployed(TicketStatus.COMPLETED, 22, rolled_back_at=now)
    deployed(TicketStatus.COMPLETED, 20, RunStatus.FAILED)
    newest = deployed(TicketStatus.MONITORING, 10)
    found = selectors.last_known_good(prod)
    assert found is not None and found.ticket_id == newest.pk
    earlier = selectors.last_known_good(prod, before=now - dt.timedelta(minutes=15))
    assert (
        earlier is not None
        and earlier.ticket_id == good.pk
        and earlier.commit_sha == good.commit_sha
    )
    assert selectors.last_known_good(prod, before=now - dt.timedelta(minutes=60)) is None
    # A ticket's own deployment is never its last known good.
    own = selectors.ticket_last_known_good(newest)
    assert own is not None and own.ticket_id == good.pk
    pending = TicketFactory(environment=prod)
    lkg = selectors.ticket_last_known_good(pending)
    assert lkg is not None and lkg.ticket_id == newest.pk
    assert selectors.last_known_good(Environment.objects.get(name="staging")) is None
