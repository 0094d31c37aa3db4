"""manage.py policy_test: a folder's Rego tests, and its policies on a stored plan."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.helpers.policies import POLICIES, aws_plan, change, evaluated
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("policy_test", *args, stdout=out)
    return out.getvalue()


def test_the_shipped_policies_pass_their_tests() -> None:
    out = _run(str(POLICIES))
    assert "PASS tags_test.rego: test_untagged_aws_resource_is_denied" in out
    assert "27 passed, 0 failed" in out


def test_a_failing_test_and_a_broken_file_fail_the_command(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "extra_test.rego").write_text(
        "package extra_test\n\nimport data.tags\n\ntest_wrong if {\n"
        '\tcount(tags.violations({"plan": {"resource_changes": []}})) == 1\n}\n'
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 failed"):
        call_command("policy_test", str(folder), stdout=out)
    assert "FAIL extra_test.rego: test_wrong" in out.getvalue()
    (folder / "tags.rego").write_text("package tags\n\ndeny contains x if {\n")
    with pytest.raises(CommandError):
        call_command("policy_test", str(folder), stdout=io.StringIO())


def test_a_folder_evaluated_on_a_stored_plan(author: User, tmp_path: Path) -> None:
    ticket = evaluated(
        awaiting("dev", author),
        aws_plan(
            change("aws_instance.web", "aws_instance", ["create"], {"instance_type": "m5.large"})
        ),
    )
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    out = _run(str(folder), "--run", str(ticket.current_plan_id))
    assert f"plan run {ticket.current_plan_id} of ticket #{ticket.pk} in dev" in out
    assert "FAIL  instance_sizes (hard)" in out
    assert "aws_instance.web: instance_type m5.large is not allowed in dev" in out
    assert "policy status: blocked" in out


APP_POLICIES = POLICIES.parent / "stacks" / "app" / "policies"


def test_every_folder_s_tests_run_the_stack_s_own_too() -> None:
    out = _run(str(POLICIES), str(APP_POLICIES))
    assert f"{POLICIES}:\n" in out and f"{APP_POLICIES}:\n" in out
    assert "27 passed, 0 failed" in out
    assert "PASS app_layer_test.rego: test_an_aws_subnet_is_denied" in out
    assert "5 passed, 0 failed" in out
    assert "all 2 folders: 32 passed, 0 failed" in out


def test_a_stack_folder_evaluated_on_a_stored_plan(author: User) -> None:
    ticket = evaluated(
        awaiting("dev", author),
        aws_plan(change("aws_vpc.extra", "aws_vpc", ["create"], {"cidr_block": "10.9.0.0/16"})),
    )
    out = _run(str(POLICIES), str(APP_POLICIES), "--run", str(ticket.current_plan_id))
    assert "PASS  public_s3 (hard)" in out
    assert f"FAIL  {APP_POLICIES}/app_layer (hard)" in out
    assert "aws_vpc.extra would create aws_vpc: the network layer owns it" in out
    assert "policy status: blocked" in out
