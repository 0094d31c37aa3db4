"""The per-resource diffs a plan keeps for its reviewers (deployments.terraform.diff): the
attributes before → after, sensitive values never kept, unknowns "known after apply",
the attributes that force a replacement flagged, all bounded and redacted."""

from __future__ import annotations

import io
import json
from typing import Any

from deployments.terraform import diff, summary
from deployments.terraform.redact import Redactor

SECRET = "hunter2-db-password"


def _plan(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"terraform_version": "1.11.4", "resource_changes": list(changes)}


def _rc(address: str, actions: list[str], **change: Any) -> dict[str, Any]:
    return {
        "address": address,
        "type": address.split(".")[-2],
        "module_address": ".".join(address.split(".")[:2]) if address.startswith("module.") else "",
        "change": {"actions": actions, **change},
    }


def _read(document: dict[str, Any]) -> dict[str, Any]:
    result, _ = summary.read_plan_json(io.BytesIO(json.dumps(document).encode()))
    return result


def _rows(result: dict[str, Any], address: str) -> dict[str, dict[str, Any]]:
    index = [r["address"] for r in result["resources"]].index(address)
    return {row["path"]: row for row in result["diffs"][index]["rows"]}


def test_an_update_keeps_only_the_changed_attributes_before_and_after() -> None:
    result = _read(
        _plan(
            _rc(
                "aws_instance.web",
                ["update"],
                before={"instance_type": "t3.small", "ami": "ami-1", "tags": {"team": "a"}},
                after={"instance_type": "t3.large", "ami": "ami-1", "tags": {"team": "b"}},
                after_unknown={},
                before_sensitive={},
                after_sensitive={},
            )
        )
    )
    rows = _rows(result, "aws_instance.web")
    assert set(rows) == {"instance_type", "tags.team"}
    assert (rows["instance_type"]["before"], rows["instance_type"]["after"]) == (
        '"t3.small"',
        '"t3.large"',
    )


def test_sensitive_values_are_never_kept_and_unknowns_read_known_after_apply() -> None:
    result = _read(
        _plan(
            _rc(
                "aws_db_instance.main",
                ["create"],
                before=None,
                after={"password": SECRET, "engine": "postgres", "nested": {"token": SECRET}},
                after_unknown={"id": True, "endpoint": True},
                before_sensitive=False,
                after_sensitive={"password": True, "nested": True},
            )
        )
    )
    assert SECRET not in json.dumps(result)
    rows = _rows(result, "aws_db_instance.main")
    assert rows["password"]["after"] == diff.SENSITIVE
    assert rows["nested"]["after"] == diff.SENSITIVE
    assert rows["id"]["after"] == diff.UNKNOWN and rows["endpoint"]["after"] == diff.UNKNOWN
    assert rows["engine"] == {
        "path": "engine",
        "before": None,
        "after": '"postgres"',
        "forces_replacement": False,
    }


def test_a_changed_sensitive_value_is_listed_masked_on_both_sides() -> None:
    result = _read(
        _plan(
            _rc(
                "aws_db_instance.main",
                ["update"],
                before={"password": "old-password-1"},
                after={"password": "new-password-2"},
                before_sensitive={"password": True},
                after_sensitive={"password": True},
            )
        )
    )
    stored = json.dumps(result)
    assert "old-password-1" not in stored and "new-password-2" not in stored
    row = _rows(result, "aws_db_instance.main")["password"]
    assert (row["before"], row["after"]) == (diff.SENSITIVE, diff.SENSITIVE)


def test_a_replacement_flags_the_attributes_that_force_it_first() -> None:
    result = _read(
        _plan(
            _rc(
                "aws_db_instance.main",
                ["delete", "create"],
                before={"engine_version": "14", "identifier": "db", "size": 20},
                after={"engine_version": "16", "identifier": "db", "size": 40},
                replace_paths=[["engine_version"]],
            )
        )
    )
    index = [r["address"] for r in result["resources"]].index("aws_db_instance.main")
    rows = result["diffs"][index]["rows"]
    assert rows[0]["path"] == "engine_version" and rows[0]["forces_replacement"] is True
    assert [r["path"] for r in rows] == ["engine_version", "size"]
    assert rows[1]["before"] == "20" and rows[1]["after"] == "40"


def test_a_destroy_lists_what_the_resource_had() -> None:
    result = _read(
        _plan(_rc("aws_s3_bucket.logs", ["delete"], before={"bucket": "logs", "arn": None}))
    )
    rows = _rows(result, "aws_s3_bucket.logs")
    assert rows == {
        "bucket": {"path": "bucket", "before": '"logs"', "after": None, "forces_replacement": False}
    }


def test_diffs_line_up_with_the_listed_resources_and_skip_no_ops() -> None:
    result = _read(
        _plan(
            _rc("null_resource.same", ["no-op"], before={"a": 1}, after={"a": 1}),
            _rc("null_resource.new", ["create"], before=None, after={"a": 2}),
        )
    )
    assert [r["address"] for r in result["resources"]] == ["null_resource.new"]
    assert len(result["diffs"]) == 1 and result["diffs"][0]["rows"][0]["after"] == "2"


def test_values_and_rows_are_bounded() -> None:
    big = "x" * (diff.VALUE_MAX_CHARS * 3)
    attrs = {f"a{n}": n for n in range(diff.ATTRS_MAX_ROWS + 7)}
    result = _read(
        _plan(
            _rc("null_resource.big", ["create"], before=None, after={"big": big, **attrs}),
        )
    )
    entry = result["diffs"][0]
    assert len(entry["rows"]) == diff.ATTRS_MAX_ROWS and entry["more"] == 8
    assert all(len(r["after"]) <= diff.VALUE_MAX_CHARS for r in entry["rows"])
    budget = diff.DiffBudget(limit=10)
    assert budget.take({"rows": [{"path": "a", "before": None, "after": big}], "more": 0})[
        "omitted"
    ]


def test_the_redactor_masks_secrets_terraform_did_not_mark() -> None:
    diffs = [{"rows": [{"path": "user_data", "before": None, "after": f'"pw={SECRET}"'}]}]
    out = diff.redact_diffs(diffs, Redactor([SECRET]))
    assert SECRET not in json.dumps(out)
    assert "[REDACTED]" in out[0]["rows"][0]["after"]
