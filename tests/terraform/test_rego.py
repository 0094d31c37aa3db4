"""The Rego evaluator itself: regopy in a sandboxed child (time and memory limits), one
result per policy, errors named; the masked plan document; policy folders."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from deployments.terraform import rego
from deployments.terraform.rego import PolicyModule, RegoJob, RegoSpec

pytestmark = pytest.mark.terraform

GOOD = PolicyModule(
    "good.rego",
    "package good\n\ndeny contains msg if {\n\tsome rc in input.plan.resource_changes\n"
    '\tnot rc.change.after.tags.owner\n\tmsg := concat("", [rc.address, " has no owner"])\n}\n\n'
    'warn contains "look" if input.plan.look\n',
)
CONFLICT = PolicyModule("conflict.rego", "package conflict\n\ndeny := 1\n\ndeny := 2\n")
BIG = PolicyModule(
    "big.rego",
    "package big\n\ndeny contains m if {\n"
    "\tm := count([x | some x in numbers.range(1, 50000000)])\n}\n",
)


def _spec(settings: Any, tmp_path: Path, *modules: PolicyModule, **extra: Any) -> RegoSpec:
    doc = {"plan": {"resource_changes": [{"address": "a.b", "change": {"after": {"tags": {}}}}]}}
    return RegoSpec(
        jobs=tuple(RegoJob(id=m.path, modules=(m,)) for m in modules),
        input=doc,
        timeout=extra.pop("timeout", 10),
        sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
        work_root=tmp_path,
        **extra,
    )


def test_each_policy_gets_its_own_result_and_errors_are_named(
    settings: Any, tmp_path: Path
) -> None:
    result = rego.evaluate(_spec(settings, tmp_path, GOOD, CONFLICT, GOOD))
    good, conflict, again = result.results
    assert good.package == "good" and good.deny == ("a.b has no owner",) and good.warn == ()
    assert "evaluation error in data.conflict.deny" in conflict.error
    assert again == good
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_memory_is_bounded_and_the_next_policy_still_runs(settings: Any, tmp_path: Path) -> None:
    result = rego.evaluate(_spec(settings, tmp_path, BIG, GOOD, memory_bytes=256 * 1024**2))
    big, good = result.results
    assert "more than 256 MiB of memory" in big.error
    assert good.deny == ("a.b has no owner",)


def test_tests_run_as_opa_test_would(settings: Any, tmp_path: Path) -> None:
    tests = PolicyModule(
        "good_test.rego",
        "package good_test\n\nimport data.good\n\ntest_passes if { 1 == 1 }\n\n"
        "test_fails if { 1 == 2 }\n",
    )
    spec = RegoSpec(
        jobs=(RegoJob(id="t", modules=(tests, GOOD), mode="test"),),
        sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
        work_root=tmp_path,
    )
    (result,) = rego.evaluate(spec).results
    assert result.tests == (("test_fails", False), ("test_passes", True))


def test_the_masked_plan_keeps_no_sensitive_value() -> None:
    plan = {
        "format_version": "1.2",
        "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}}}},
        "variables": {"db_password": {"value": "hunter2"}, "region": {"value": "us-east-1"}},
        "prior_state": {"values": {"secret": "state-only"}},
        "resource_changes": [
            {
                "address": "aws_db_instance.main",
                "change": {
                    "actions": ["create"],
                    "after": {"password": "hunter2", "tags": {"Owner": "o"}, "port": 5432},
                    "after_sensitive": {"password": True},
                },
            }
        ],
        "output_changes": {"dsn": {"after": "postgres://x:hunter2@h", "after_sensitive": True}},
    }
    masked = rego.masked_plan(plan, lambda text: text.replace("also-secret", "****"))
    text = json.dumps(masked)
    assert "hunter2" not in text and "state-only" not in text
    after = masked["resource_changes"][0]["change"]["after"]
    assert after == {"password": "(sensitive value)", "tags": {"Owner": "o"}, "port": 5432}
    assert masked["variables"]["region"] == {"value": "us-east-1"}
    assert rego.masked_plan(
        {"variables": {"x": {"value": "also-secret"}}}, lambda t: t.replace("also-secret", "****")
    )["variables"]["x"] == {"value": "****"}


def test_policy_folders_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "a.rego").write_text("package a\n")
    (tmp_path / "lib" / "util.rego").write_text("package lib.util\n")
    (tmp_path / "notes.md").write_text("not a policy")
    (tmp_path / "manifest.json").write_text(json.dumps({"policies": {"a": {"level": "soft"}}}))
    files, manifest = rego.read_policy_folder(tmp_path)
    assert sorted(files) == ["a.rego", "lib/util.rego"]
    assert manifest["policies"]["a"]["level"] == "soft"
    assert rego.read_policy_folder(tmp_path / "missing") == ({}, {})
    for bad, why in (
        ("[]", 'needs a "policies" object'),
        ('{"policies": {"a": {"level": "strict"}}}', "level 'strict'"),
        ('{"policies": {"a": {"environments": "prod"}}}', "must be a list"),
        ("{", "not JSON"),
    ):
        (tmp_path / "manifest.json").write_text(bad)
        with pytest.raises(rego.PolicyFolderError, match=why):
            rego.read_policy_folder(tmp_path)


def test_the_evaluator_runs_in_the_sandbox_without_network(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(rego, "_popen", lambda argv, *a, **k: started.append(list(argv)))
    config = dataclasses.replace(settings.TERRAFORM_SANDBOX_CONFIG, backend="bwrap")
    plan = rego.MountPlan(
        binary=Path(sys.executable), workdir=tmp_path, cwd=tmp_path, home=tmp_path, run_dir=tmp_path
    )
    rego._spawn_bwrap(config, plan, ["python", "-I", "-S", "child.py"], None, [tmp_path])
    (argv,) = started
    assert "--unshare-net" in argv and "--unshare-pid" in argv
    assert argv[-4:] == ["python", "-I", "-S", "child.py"]
