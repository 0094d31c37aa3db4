"""Secrets are masked before any Terraform output is stored."""

from hypothesis import given
from hypothesis import strategies as st

from deployments.terraform.redact import MASK, Redactor, secret_values_from_env
from deployments.terraform.runner import cli_config_text
from deployments.terraform.summary import sensitive_values, summarize_plan


def test_known_values_and_credential_shapes_are_masked() -> None:
    redact = Redactor(["hunter2-secret"])
    line = (
        'db_password = "hunter2-secret" key AKIAIOSFODNN7EXAMPLE '
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY "
        "https://hooks.slack.com/services/T000/B000/XXXX ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    )
    out = redact(line)
    for secret in (
        "hunter2-secret",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "hooks.slack.com",
        "ghp_abcdefghijklmnop",
    ):
        assert secret not in out
    assert out.count(MASK) >= 5


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=8, max_size=40))
def test_a_registered_secret_never_survives(secret: str) -> None:
    redact = Redactor([secret])
    assert secret not in redact(f"before {secret} after {secret}")


def test_validation_errors_do_not_print_secret_variables() -> None:
    out = Redactor()('│     │ var.db_password is "short-secret"')
    assert "short-secret" not in out and "var.db_password is" in out
    assert Redactor()("var.instance_count is 3") == "var.instance_count is 3"


def test_secret_environment_values_are_collected_by_name() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "s3cr3tvalue", "AWS_REGION": "us-east-1", "GITHUB_TOKEN": "tok"}
    assert sorted(secret_values_from_env(env)) == ["s3cr3tvalue", "tok"]


PLAN = {
    "terraform_version": "1.11.4",
    "variables": {"db_password": {"value": "pw-123456"}, "env": {"value": "dev"}},
    "configuration": {
        "root_module": {"variables": {"db_password": {"sensitive": True}, "env": {}}}
    },
    "resource_changes": [
        {
            "address": "a.b",
            "change": {
                "actions": ["create"],
                "after": {"triggers": {"p": "x1234"}},
                "after_sensitive": {"triggers": {"p": True}},
            },
        },
        {"address": "a.c", "change": {"actions": ["delete", "create"], "after": {}}},
        {"address": "a.d", "change": {"actions": ["update"], "after": {}}},
        {"address": "a.e", "change": {"actions": ["no-op"], "after": {}}},
        {"address": "a.f", "change": {"actions": ["delete"], "after": None}},
    ],
    "output_changes": {
        "conn": {"actions": ["create"], "after": "postgres://u:pw@h", "after_sensitive": True}
    },
}


def test_summary_counts_actions_and_holds_no_values() -> None:
    summary = summarize_plan(PLAN)
    assert (summary["add"], summary["change"], summary["destroy"]) == (2, 1, 2)
    assert {r["address"]: r["action"] for r in summary["resources"]} == {
        "a.b": "create",
        "a.c": "replace",
        "a.d": "update",
        "a.f": "delete",
    }
    assert "pw-123456" not in str(summary) and "x1234" not in str(summary)


def test_sensitive_values_are_found_for_the_redactor() -> None:
    assert set(sensitive_values(PLAN)) == {"pw-123456", "x1234", "postgres://u:pw@h"}


def test_cli_config_keeps_mirrored_providers_off_the_network(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "registry.terraform.io/hashicorp/null/2.1.2/linux_amd64").mkdir(parents=True)
    text = cli_config_text(tmp_path, allow_network=True)
    assert 'include = ["registry.terraform.io/hashicorp/null"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/null"]' in text


def test_cli_config_installs_from_the_mirror_only_unless_the_environment_allows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "registry.terraform.io/hashicorp/null/2.1.2/linux_amd64").mkdir(parents=True)
    text = cli_config_text(tmp_path)
    assert "filesystem_mirror" in text and "direct" not in text
    # No plugin cache: a folder every run could write, whose binaries the next run executes.
    assert "plugin_cache_dir" not in text
