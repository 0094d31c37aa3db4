"""Plans as real AWS teams make them (issue 18): imports, moves, forgets, action invocations
and drift are summarised, shown and scored; the data-loss floor knows every AWS type that
holds data. Documents are real `terraform show -json` output (tests/data/plans/real-*.json,
made by tests/helpers/plans.py with Terraform 1.11) or written by hand to the documented
format (aws-*.json)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from deployments.models import AuditEvent, Environment, Ticket
from deployments.policy import data_resources, risk
from deployments.services.environments import environment_save
from deployments.services.risk import ticket_risk_refresh
from deployments.terraform.runner import find_binary
from deployments.terraform.summary import (
    has_changes,
    sensitive_values,
    summarize_plan,
    summary_line,
)
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK, ROLLBACK_OK, RunFactory, TicketFactory
from tests.helpers.paths import ROOT
from tests.helpers.plans import REAL_PLANS, load, make_real_plan

QUIET = {"impact": "low", "likelihood": "low", "summary": "s", "tested_in_staging": True}


def _only(document: dict[str, Any], address: str) -> dict[str, Any]:
    """The document with one of its resource changes and nothing else planned."""
    single = copy.deepcopy(document)
    single["resource_changes"] = [
        rc for rc in document["resource_changes"] if rc["address"] == address
    ]
    single.pop("action_invocations", None)
    single.pop("resource_drift", None)
    return single


# --- the summary of real documents -------------------------------------------------


def test_a_move_only_plan_counts_and_lists_each_move() -> None:
    summary = summarize_plan(load("real-move-only"))
    assert (summary["add"], summary["change"], summary["destroy"]) == (0, 0, 0)
    assert summary["move_count"] == 3 and summary["import_count"] == 0
    moves = {r["address"]: r["previous_address"] for r in summary["resources"]}
    assert moves == {
        "null_resource.jobs_queue": "null_resource.queue",
        "module.archive.null_resource.bucket": "null_resource.bucket",
        "module.media.null_resource.bucket": "module.store.null_resource.bucket",
    }
    assert all(r["action"] == "no-op" and not r["importing"] for r in summary["resources"])
    assert has_changes(summary)
    assert summary_line(summary) == "0 to add, 0 to change, 0 to destroy, 3 to move"


def test_an_import_only_plan_counts_the_import_as_terraform_does() -> None:
    summary = summarize_plan(load("real-import-only"))
    assert summary["resources"] == [
        {
            "address": "terraform_data.adopted",
            "type": "terraform_data",
            "module": "",
            "action": "no-op",
            "previous_address": "",
            "importing": True,
        }
    ]
    assert summary["import_count"] == 1 and has_changes(summary)
    # Terraform printed "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."
    assert summary_line(summary) == "1 to import, 0 to add, 0 to change, 0 to destroy"
    # The import ID is a value like any other: left out.
    assert "existing-object-id" not in json.dumps(summary)


def test_a_forget_only_plan_counts_the_forget() -> None:
    summary = summarize_plan(load("real-forget-only"))
    assert [(r["address"], r["action"]) for r in summary["resources"]] == [
        ("terraform_data.legacy", "forget")
    ]
    assert (summary["forget_count"], summary["destroy"]) == (1, 0)
    assert summary_line(summary) == "0 to add, 0 to change, 0 to destroy, 1 to forget"


def test_a_mixed_plan_counts_each_kind_once() -> None:
    summary = summarize_plan(load("real-mixed"))
    counts = {
        key: summary[key]
        for key in ("add", "change", "destroy", "import_count", "move_count", "forget_count")
    }
    assert counts == {
        "add": 1,
        "change": 1,
        "destroy": 1,
        "import_count": 1,
        "move_count": 1,
        "forget_count": 1,
    }
    assert summary_line(summary) == (
        "1 to import, 1 to add, 1 to change, 1 to destroy, 1 to move, 1 to forget"
    )


def test_a_plan_without_state_changes_reads_as_before() -> None:
    document = _only(load("real-mixed"), "terraform_data.fresh")
    summary = summarize_plan(document)
    assert summary_line(summary) == "1 to add, 0 to change, 0 to destroy"
    assert summary["resources"][0]["action"] == "create"


# --- AWS-shaped documents ---------------------------------------------------------


def test_an_aws_plan_with_imports_moves_forgets_actions_and_drift() -> None:
    summary = summarize_plan(load("aws-state-changes"))
    listed = {r["address"]: r for r in summary["resources"]}
    assert set(listed) == {
        "aws_s3_bucket.logs",
        "aws_cloudwatch_log_group.app",
        "module.data.aws_db_instance.main",
        "aws_dynamodb_table.sessions",
        "aws_iam_role.legacy_worker",
        "aws_lambda_function.thumbnailer",
    }
    assert listed["aws_cloudwatch_log_group.app"]["action"] == "update"
    assert listed["aws_cloudwatch_log_group.app"]["importing"] is True
    assert listed["module.data.aws_db_instance.main"]["previous_address"] == (
        "module.database.aws_db_instance.main"
    )
    assert {k: summary[k] for k in ("import_count", "move_count", "forget_count")} == {
        "import_count": 2,
        "move_count": 1,
        "forget_count": 2,
    }
    assert summary["action_invocations"] == [
        {
            "address": "action.aws_lambda_invoke.warm_cache",
            "type": "aws_lambda_invoke",
            "trigger": "after_update",
            "resource": "aws_lambda_function.thumbnailer",
        },
        {
            "address": "action.aws_cloudfront_create_invalidation.media",
            "type": "aws_cloudfront_create_invalidation",
            "trigger": "invoke",
            "resource": "",
        },
    ]
    assert [(d["address"], d["action"]) for d in summary["drift"]] == [
        ("aws_security_group.app", "update"),
        ("module.database.aws_db_instance.main", "update"),
    ]
    assert summary["invoke_count"] == 2 and summary["drift_count"] == 2
    assert summary_line(summary) == (
        "2 to import, 0 to add, 2 to change, 0 to destroy, 1 to move, 2 to forget; "
        "2 actions to invoke"
    )
    # No value of any kind reaches the summary.
    text = json.dumps(summary)
    for value in ("media-prod-logs", "drifted-db-password-value", "action-payload-secret"):
        assert value not in text


def test_an_action_invocation_alone_is_a_change() -> None:
    document = load("aws-state-changes")
    document["resource_changes"] = []
    document.pop("resource_drift")
    summary = summarize_plan(document)
    assert summary["resources"] == [] and has_changes(summary)
    assert summary_line(summary) == "0 to add, 0 to change, 0 to destroy; 2 actions to invoke"


def test_secrets_of_drift_and_action_invocations_are_masked() -> None:
    found = set(sensitive_values(load("aws-state-changes")))
    assert {
        "drifted-db-password-value",
        "old-db-password-value",
        '{"token":"action-payload-secret"}',
    } <= found
    assert "media-prod-thumbnailer" not in found and "E2QWRUHAPOMQZL" not in found


# --- the data-loss floor -------------------------------------------------------------

_DESTROYS = load("aws-destroys")
_DATA = sorted(
    rc["address"]
    for rc in _DESTROYS["resource_changes"]
    if rc["type"] in data_resources.DATA_RESOURCE_TYPES
)
_NO_DATA = sorted(
    rc["address"]
    for rc in _DESTROYS["resource_changes"]
    if rc["type"] not in data_resources.DATA_RESOURCE_TYPES
)


def test_the_issue_s_data_holders_are_in_the_table() -> None:
    named = {
        "aws_ebs_volume",
        "aws_ebs_snapshot",
        "aws_ecr_repository",
        "aws_elasticsearch_domain",
        "aws_kms_key",
        "aws_neptune_cluster",
        "aws_neptune_cluster_snapshot",
        "aws_dynamodb_table",
        "aws_efs_file_system",
        "aws_docdb_cluster",
        "aws_redshift_cluster",
        "aws_db_instance",
        "aws_rds_cluster",
        "aws_s3_bucket",
        "aws_elasticache_replication_group",
        "aws_memorydb_cluster",
        "aws_opensearch_domain",
        "aws_secretsmanager_secret",
        "aws_backup_vault",
        "aws_kinesis_stream",
        "aws_sqs_queue",
        "aws_msk_cluster",
        "aws_cloudwatch_log_group",
        "aws_timestreamwrite_table",
        "aws_keyspaces_table",
    }
    assert named <= set(data_resources.DATA_RESOURCE_TYPES)
    assert len(_DATA) == 24 and len(_NO_DATA) == 7


def test_each_entry_of_the_table_says_why_in_one_line() -> None:
    for rtype, why in data_resources.DATA_RESOURCE_TYPES.items():
        assert rtype.startswith("aws_") and rtype == rtype.lower(), rtype
        assert why.strip() and "\n" not in why and len(why) <= data_resources.WHY_MAX, rtype
    for no_data in (
        "aws_db_subnet_group",
        "aws_db_parameter_group",
        "aws_db_option_group",
        "aws_rds_cluster_parameter_group",
        "aws_elasticache_subnet_group",
        "aws_rds_cluster_instance",
        "aws_s3_bucket_versioning",
    ):
        assert no_data not in data_resources.DATA_RESOURCE_TYPES


@pytest.mark.parametrize("address", _DATA)
def test_deleting_or_replacing_any_data_holder_is_high(address: str) -> None:
    summary = summarize_plan(_only(_DESTROYS, address))
    out = risk.assess(QUIET, summary)
    item = (out["blast_radius"]["deletes"] + out["blast_radius"]["replaces"])[0]
    assert out["level"] == "high", out["reasons"]
    assert out["reasons"][0].startswith(("high: deletes ", "high: replaces "))
    assert out["reasons"][0].endswith(item["data_reason"]) and item["data_reason"]
    assert item["address"] == address


@pytest.mark.parametrize("address", _NO_DATA)
def test_deleting_or_replacing_what_holds_no_data_is_scored_not_forced(address: str) -> None:
    out = risk.assess(QUIET, summarize_plan(_only(_DESTROYS, address)))
    assert out["level"] == "low", out["reasons"]
    assert out["reasons"][0] == f"low: score {out['score']}"


def test_the_whole_destroy_plan_lists_every_data_holder_first() -> None:
    out = risk.assess(QUIET, summarize_plan(_DESTROYS))
    floors = [r for r in out["reasons"] if r.startswith("high: ")]
    assert len(floors) == len(_DATA)
    assert out["reasons"][: len(floors)] == floors


def test_forgetting_a_data_holder_is_at_least_medium() -> None:
    table = summarize_plan(_only(load("aws-state-changes"), "aws_dynamodb_table.sessions"))
    out = risk.assess(QUIET, table)
    why = data_resources.DATA_RESOURCE_TYPES["aws_dynamodb_table"]
    assert (out["level"], out["score"]) == ("medium", 4)  # low by its score
    assert out["reasons"][0] == (
        "medium: forgets aws_dynamodb_table.sessions (database), which stays but is no longer "
        f"managed: {why}"
    )
    out = risk.assess(QUIET, summarize_plan(load("aws-state-changes")))
    blast = out["blast_radius"]
    assert [i["address"] for i in blast["imports"]] == [
        "aws_s3_bucket.logs",
        "aws_cloudwatch_log_group.app",
    ]
    assert blast["moves"][0]["previous_address"] == "module.database.aws_db_instance.main"
    assert blast["forget_count"] == 2 and blast["invoke_count"] == 2
    assert "the plan forgets 2 resources" in " ".join(out["reasons"])
    assert any(r.startswith("the plan invokes 2 actions") for r in out["reasons"])
    assert (
        "the plan imports 2 resources and moves 1 resource (Terraform's state only): +0"
        in (out["reasons"])
    )
    # The forget of an IAM role counts, but holds no data: no floor of its own.
    only_role = summarize_plan(_only(load("aws-state-changes"), "aws_iam_role.legacy_worker"))
    assert risk.assess(QUIET, only_role)["level"] == "low"


def test_a_move_only_plan_is_low_but_touches_what_it_moves() -> None:
    out = risk.assess(QUIET, summarize_plan(load("real-move-only")))
    assert out["level"] == "low"
    assert out["blast_radius"]["components"] == ["other"]
    assert out["blast_radius"]["move_count"] == 3
    assert "the plan moves 3 resources (Terraform's state only): +0" in out["reasons"]


def test_an_environment_names_its_own_data_holders() -> None:
    extra = data_resources.parse_extra(
        [
            {"address": "terraform_data.legacy", "why": "the legacy ledger"},
            {"type": "mycorp_ledger", "why": "a ledger of the in-house provider"},
        ]
    )
    forget = summarize_plan(load("real-forget-only"))
    assert risk.assess(QUIET, forget)["level"] == "low"
    out = risk.assess(QUIET, forget, extra)
    assert out["level"] == "medium" and out["reasons"][0].endswith(": the legacy ledger")
    custom = {"resources": [{"address": 'mycorp_ledger.main["eu"]', "action": "delete"}]}
    assert risk.assess(QUIET, custom, extra)["level"] == "high"
    # An address entry matches every instance of the resource.
    instances = {
        "resources": [
            {"address": 'terraform_data.legacy["a"]', "type": "terraform_data", "action": "delete"}
        ]
    }
    assert risk.assess(QUIET, instances, extra)["level"] == "high"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"type": "aws_x"}, "must be a list"),
        (["aws_x"], "entry 1: must be an object"),
        ([{"type": "aws_x"}], "entry 1: why is required"),
        ([{"type": "aws_x", "why": "  "}], "why is required"),
        ([{"type": "Bad Type", "why": "w"}], "is not a resource type"),
        ([{"address": "module.db.x[0].y", "why": "w"}], "without instance keys"),
        ([{"type": "aws_x", "address": "a.b", "why": "w"}], "either a type or an address"),
        ([{"type": "aws_x", "why": "w", "note": 1}], "unknown key 'note'"),
        ([{"type": "aws_x", "why": "w"}, {"type": "aws_x", "why": "v"}], "listed twice"),
        ([{"type": "aws_x", "why": "w" * 201}], "at most 200 characters"),
        ([{"type": "aws_x", "why": "a\x00b"}], "NUL"),
    ],
)
def test_bad_extra_entries_are_refused_with_a_sentence(value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        data_resources.parse_extra(value)


def test_the_sample_stack_entries_are_valid_and_name_its_stand_ins() -> None:
    extra = data_resources.parse_extra(data_resources.SAMPLE_STACK_EXTRA)
    stack = ROOT / "sample_stack/terraform/modules"
    for entry in extra:
        _, module, rtype, name = entry.address.split(".")
        assert f'resource "{rtype}" "{name}"' in (stack / module / "main.tf").read_text()


# --- the ticket page, the API, the admin ----------------------------------------------


def _ticket_with_plan(env: str, author: User, document: dict[str, Any]) -> Ticket:
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env),
        author=author,
        risk_assessment=RISK_OK,
        rollback_plan=ROLLBACK_OK,
    )
    summary = summarize_plan(document)
    plan = RunFactory(
        ticket=ticket,
        plan_sha256=hashlib.sha256(b"plan-%d" % ticket.pk).hexdigest(),
        summary=summary,
        has_changes=has_changes(summary),
    )
    ticket.current_plan = plan
    ticket.save()
    with transaction.atomic():
        ticket_risk_refresh(ticket, actor="worker", run=plan)
    ticket.refresh_from_db()
    return ticket


@pytest.mark.django_db
def test_the_api_shows_state_changes_actions_and_drift(author: User, operations: User) -> None:
    ticket = _ticket_with_plan("prod", author, load("aws-state-changes"))
    body = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    plan = body["plan_summary"]
    assert (plan["add"], plan["change"], plan["destroy"]) == (0, 2, 0)
    assert {k: plan[k] for k in ("import_count", "move_count", "forget_count")} == {
        "import_count": 2,
        "move_count": 1,
        "forget_count": 2,
    }
    assert (plan["invoke_count"], plan["drift_count"]) == (2, 2)
    moved = next(r for r in plan["resources"] if r["previous_address"])
    assert moved["address"] == "module.data.aws_db_instance.main"
    assert plan["action_invocations"][0]["trigger"] == "after_update"
    assert plan["drift"][0]["address"] == "aws_security_group.app"
    assert body["current_plan"]["summary"] == plan
    blast = body["risk_assessment"]["blast_radius"]
    assert blast["forgets"][0] == {
        "address": "aws_dynamodb_table.sessions",
        "component": "database",
        "data_reason": data_resources.DATA_RESOURCE_TYPES["aws_dynamodb_table"],
    }
    assert blast["invocations"][1]["trigger"] == "invoke"
    # Six components, two forgets and two actions score high; the forget's floor, not
    # decisive, is still read.
    reasons = body["risk_assessment"]["reasons"]
    assert body["risk_assessment"]["level"] == "high" and reasons[0].startswith("high: score ")
    assert reasons[1].startswith("medium: forgets aws_dynamodb_table.sessions")
    run = api_for(operations).get(f"/api/v1/runs/{ticket.current_plan_id}/").json()
    assert run["summary"]["import_count"] == 2 and run["has_changes"] is True


@pytest.mark.django_db
def test_a_plan_stored_before_these_fields_still_reads(author: User, operations: User) -> None:
    ticket = _ticket_with_plan("prod", author, load("real-mixed"))
    old = {"add": 1, "change": 0, "destroy": 0, "resources": [{"address": "a.b", "action": "x"}]}
    ticket.current_plan.summary = old
    ticket.current_plan.save()
    ticket.risk = {**ticket.risk, "blast_radius": {**ticket.risk["blast_radius"]}}
    for key in ("forgets", "imports", "moves", "invocations", "forget_count", "import_count"):
        ticket.risk["blast_radius"].pop(key)
    ticket.save()
    body = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["plan_summary"]["resources"] == [
        {"address": "a.b", "action": "x", "previous_address": "", "importing": False}
    ]
    assert body["plan_summary"]["import_count"] == 0
    assert body["risk_assessment"]["blast_radius"]["forgets"] == []
    assert body["risk_assessment"]["blast_radius"]["import_count"] == 0


@pytest.mark.django_db
def test_the_ticket_page_reads_a_move_and_import_plan(author: User, operations: User) -> None:
    ticket = _ticket_with_plan("prod", author, load("aws-state-changes"))
    client = Client()
    client.force_login(operations)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    for needle in (
        '<span class="import">2 to import</span>',
        '<span class="move">1 to move</span>',
        '<span class="forget">2 to forget</span>',
        '<span class="invoke">2 actions to invoke</span>',
        'id="plan-forget-note"',
        "<code>module.data.aws_db_instance.main</code> <small>moved from "
        "<code>module.database.aws_db_instance.main</code></small>",
        '<details class="change change-import" data-action="import" '
        'data-address="aws_s3_bucket.logs">',
        "after_update of <code>aws_lambda_function.thumbnailer</code>",
        "2 changes made outside Terraform",
        'id="blast-state">State only: imports 2, moves 1, forgets 2 resource(s).',
        'id="blast-actions">Invokes 2 action(s).',
        "holds data: a DynamoDB table",
    ):
        assert needle in html, needle
    assert "Touches: nothing" not in html


@pytest.mark.django_db
def test_a_plan_of_creates_only_shows_no_state_line(author: User, operations: User) -> None:
    ticket = _ticket_with_plan("prod", author, _only(load("real-mixed"), "terraform_data.fresh"))
    client = Client()
    client.force_login(operations)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "+1 to add" in html and 'id="plan-state-counts"' not in html


def _environment_admin_post(env: Environment) -> dict[str, str]:
    from deployments.admin import EnvironmentForm

    data: dict[str, str] = {}
    for name in EnvironmentForm._meta.fields or []:
        value = getattr(env, name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, dict | list):
            data[name] = json.dumps(value)
        elif value is not None:
            data[name] = str(value)
    return data


@pytest.mark.django_db
def test_the_admin_adds_data_holders_validated_and_audited(admin_client: Any, author: User) -> None:
    prod = Environment.objects.get(name="prod")
    url = f"/admin/deployments/environment/{prod.pk}/change/"
    data = _environment_admin_post(prod)
    data["data_resource_types"] = json.dumps([{"type": "aws_x", "address": "a.b", "why": "w"}])
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors["data_resource_types"]
    assert errors == ["data_resource_types: entry 1: give either a type or an address"]
    prod.refresh_from_db()
    assert prod.data_resource_types == []
    assert not AuditEvent.objects.filter(action="environment.update").exists()

    entries = [{"type": "mycorp_ledger", "why": "the in-house ledger"}]
    data["data_resource_types"] = json.dumps(entries)
    assert admin_client.post(url, data).status_code == 302
    prod.refresh_from_db()
    assert prod.data_resource_types == entries
    event = AuditEvent.objects.get(action="environment.update")
    assert event.data["changes"] == {"data_resource_types": {"from": [], "to": entries}}

    # The next scoring of a prod ticket counts it.
    document = {"resource_changes": [_ledger_delete()]}
    ticket = _ticket_with_plan("prod", author, document)
    assert ticket.risk["level"] == "high"
    assert ticket.risk["reasons"][0] == (
        "high: deletes mycorp_ledger.main (other): the in-house ledger"
    )
    assert AuditEvent.objects.filter(ticket=ticket, action="ticket.risk").last().data[
        "data_reasons"
    ] == ["the in-house ledger"]


def _ledger_delete() -> dict[str, Any]:
    return {
        "address": "mycorp_ledger.main",
        "mode": "managed",
        "type": "mycorp_ledger",
        "name": "main",
        "change": {"actions": ["delete"], "before": {}, "after": None},
    }


@pytest.mark.django_db
def test_the_service_refuses_bad_entries_and_writes_nothing() -> None:
    from deployments import services

    dev = Environment.objects.get(name="dev")
    dev.data_resource_types = [{"type": "aws_x"}]
    with pytest.raises(services.InputError) as refused:
        environment_save(actor="admin", env=dev, changed=["data_resource_types"])
    assert refused.value.field == "data_resource_types"
    assert "why is required" in refused.value.message
    dev.refresh_from_db()
    assert dev.data_resource_types == []


@pytest.mark.django_db
def test_the_local_run_names_the_sample_stack_s_data_holders(settings: Any) -> None:
    from django.core.management import call_command

    settings.EMBEDDED = True
    staging = Environment.objects.get(name="staging")
    staging.data_resource_types = [{"type": "aws_x", "why": "kept"}]
    staging.save()
    call_command("seed_demo")
    assert Environment.objects.get(name="dev").data_resource_types == (
        data_resources.SAMPLE_STACK_EXTRA
    )
    assert Environment.objects.get(name="staging").data_resource_types == [
        {"type": "aws_x", "why": "kept"}
    ]
    assert AuditEvent.objects.filter(action="environment.update", actor_name="seed_demo").count()


# --- the vendored real documents are what Terraform makes --------------------------


@pytest.mark.terraform
@pytest.mark.parametrize("name", sorted(REAL_PLANS))
def test_the_vendored_real_plans_are_what_terraform_makes(name: str, tmp_path: Path) -> None:
    import sys

    from django.conf import settings

    assert find_binary()  # a Terraform binary is there
    mirror = Path(settings.TERRAFORM_PROVIDER_MIRROR)
    if not mirror.is_dir():
        mirror = Path(sys.prefix) / "share" / "terraform-providers"
    workdir = tmp_path / "root"
    workdir.mkdir()
    fresh = summarize_plan(make_real_plan(workdir, name, mirror))
    vendored = summarize_plan(load(f"real-{name}"))
    fresh.pop("terraform_version")
    vendored.pop("terraform_version")
    assert fresh == vendored


@pytest.mark.django_db
def test_the_schema_names_the_new_fields(author: User) -> None:
    schemas = api_for(author).get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    summary = schemas["PlanSummary"]["properties"]
    for name in ("import_count", "move_count", "forget_count", "invoke_count", "drift_count"):
        assert summary[name]["type"] == "integer"
    assert {"previous_address", "importing"} <= set(schemas["PlanResource"]["properties"])
    assert set(schemas["PlanActionInvocation"]["properties"]) == {
        "address",
        "type",
        "trigger",
        "resource",
    }
    blast = schemas["BlastRadius"]["properties"]
    assert {"forgets", "imports", "moves", "invocations", "forget_count"} <= set(blast)
    assert "data_reason" in schemas["BlastItem"]["properties"]
