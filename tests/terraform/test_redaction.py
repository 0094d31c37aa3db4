"""Secrets are masked before any Terraform output is stored."""

import pytest
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


# --- encoded forms (issue 17: a run printed the worker's environment base64-encoded) -----

ENCODED_SECRET = "hunter2-Sup3r$ecret/+value=="


@pytest.mark.parametrize("before", range(4))
@pytest.mark.parametrize("after", range(3))
@pytest.mark.parametrize("alphabet", ["standard", "urlsafe"])
def test_base64_of_a_secret_is_masked_at_every_alignment(
    before: int, after: int, alphabet: str
) -> None:
    import base64

    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode
    blob = b"K" * before + ENCODED_SECRET.encode() + b"Z" * after
    line = f"leak: {encode(blob).decode()} end"
    out = Redactor([ENCODED_SECRET])(line)
    assert out.startswith("leak: ") and out.endswith(" end") and out.count("[REDACTED]") == 1
    # Left visible: the neighbours' own characters and at most two ragged ones on each
    # side (each carrying under one byte of the secret), never the encoded secret.
    visible = out[len("leak: ") : -len(" end")].replace("[REDACTED]", "")
    assert len(visible) <= 12, out


def test_hex_and_url_encoded_secrets_are_masked() -> None:
    from urllib.parse import quote, quote_plus

    redact = Redactor([ENCODED_SECRET])
    raw = ENCODED_SECRET.encode()
    for form in (
        raw.hex(),
        raw.hex().upper(),
        quote(ENCODED_SECRET, safe=""),
        quote_plus(ENCODED_SECRET),
    ):
        assert redact(f"x {form} y") == "x [REDACTED] y", form
