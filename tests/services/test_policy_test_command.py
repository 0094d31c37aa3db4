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
