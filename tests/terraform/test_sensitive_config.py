"""What the portal learns is secret from the configuration, before Terraform runs (issue
18): ephemeral variables; sensitive defaults of a configuration python-hcl2 cannot parse;
and, where the configuration says exactly which part of a variable reaches a sensitive
module input, that part only."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deployments.choices import RunKind, TicketStatus
from deployments.terraform.redact import MASK
from deployments.terraform.sensitive import sensitive_values
from deployments.terraform.source import commit_all
from tests.helpers.flow import drain, file_dev


def _config(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _found(root: Path, tfvars: str = "", env: dict[str, str] | None = None) -> set[str]:
    (root / "x.tfvars").write_text(tfvars)
    return set(sensitive_values(root, [root / "x.tfvars"], env or {}))


# --- ephemeral variables -----------------------------------------------------------------


def test_ephemeral_variables_are_masked_like_sensitive_ones(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        {
            "main.tf": 'variable "session" {\n  type = string\n  ephemeral = true\n}\n'
            'variable "fallback" {\n  ephemeral = true\n  default = "ephemeral-default"\n}\n'
            'variable "plain" {\n  default = "plain-default"\n}\n'
            'module "child" {\n  source = "./child"\n  handshake = var.fed\n}\n'
            'variable "fed" {}\n',
            "child/main.tf": 'variable "handshake" {\n  ephemeral = true\n}\n',
        },
    )
    found = _found(
        root,
        'session = "ephemeral-session-value"\nplain = "plain-value"\nfed = "fed-ephemeral"\n',
        {"TF_VAR_session": "session-from-env"},
    )
    assert found == {
        "ephemeral-session-value",
        "session-from-env",
        "ephemeral-default",
        "fed-ephemeral",
    }


# --- a configuration python-hcl2 cannot parse ------------------------------------------

BROKEN = """
variable "token" {
  type      = string
  sensitive = true
  default   = "default-token-secret" oops
}
variable "session" {
  ephemeral = true
  default   = <<-EOT
    heredoc-ephemeral-secret
  EOT
}
variable "region" {
  default = "eu-west-1"
}
module "db" {
  source   = "./db"
  password = var.fed
  name     = var.region
}
variable "fed" {
  default = "fed-default-secret"
}
variable "unfinished" {
  description = "a variable whose block never closes"
  default     = { inner = "unclosed-block-secret" }
"""


def test_an_unparseable_file_keeps_its_sensitive_defaults_masked(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        {
            "main.tf": BROKEN,
            "other.tf": 'variable "api" {\n  sensitive = true\n  default = "parsed-secret"\n}\n',
            "db/main.tf": 'variable "password" {\n  sensitive = true\n}\nvariable "name" {}\n',
        },
    )
    found = _found(root, 'region = "us-east-2"\n', {"TF_VAR_other": "env-value"})
    assert {
        "default-token-secret",
        "heredoc-ephemeral-secret\n",
        "fed-default-secret",  # passed to the module's sensitive input
        "unclosed-block-secret",  # anything in a block that never closes
        "parsed-secret",  # the other file parsed
        # Fail closed, as before: every assigned value.
        "us-east-2",
        "env-value",
    } == found
    assert "eu-west-1" not in found and "a variable whose block never closes" not in found


def test_a_brace_left_open_earlier_does_not_hide_a_sensitive_variable(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        {
            "main.tf": 'resource "terraform_data" "x" {\n  input = [\n'
            'variable "late" {\n  sensitive = true\n  default = "late-secret"\n}\n'
        },
    )
    assert "late-secret" in _found(root)


# --- narrowing: only what the configuration says is secret -------------------------------

CHILD = """
variable "api_keys" {
  type      = map(string)
  sensitive = true
}
variable "names" {
  type = list(string)
}
variable "password" {
  type      = string
  sensitive = true
}
variable "token_list" {
  type      = list(string)
  sensitive = true
}
variable "creds" {
  type      = object({ user = string, pass = string })
  sensitive = true
}
"""
EXTENSIONS = """
extensions = {
  search = { name = "opensearch-plugin", api_key = "search-api-key-1" }
  stripe = { name = "payments-plugin", api_key = "stripe-api-key-2" }
}
db = { host = "db.internal.example", password = "db-password-value" }
items = [
  { label = "first-item", token = "item-token-1" },
  { label = "second-item", token = "item-token-2" },
]
user = "service-user-name"
"""


def _narrow(tmp_path: Path, arguments: str, tfvars: str = EXTENSIONS) -> set[str]:
    root = _config(
        tmp_path,
        {
            "main.tf": "\n".join(
                f'variable "{name}" {{}}' for name in ("extensions", "db", "items", "user", "env")
            )
            + f'\nmodule "app" {{\n  source = "./app"\n{arguments}\n}}\n',
            "app/main.tf": CHILD,
        },
    )
    return _found(root, tfvars)


@pytest.mark.parametrize(
    ("argument", "secret"),
    [
        (
            "  api_keys = { for k, v in var.extensions : k => v.api_key }",
            {"search-api-key-1", "stripe-api-key-2"},
        ),
        (
            '  api_keys = { for k, v in var.extensions : k => v.api_key if v.name != "" }',
            {"search-api-key-1", "stripe-api-key-2"},
        ),
        ("  token_list = [for item in var.items : item.token]", {"item-token-1", "item-token-2"}),
        ("  token_list = var.items[*].token", {"item-token-1", "item-token-2"}),
        ('  password = var.extensions["stripe"].api_key', {"stripe-api-key-2"}),
        ("  password = var.db.password", {"db-password-value"}),
        ("  token_list = [var.items[1].token]", {"item-token-2"}),
        (
            "  creds = { user = var.user, pass = var.db.password }",
            {"service-user-name", "db-password-value"},
        ),
        # Not exactly said: whole, at the part named statically.
        ("  password = base64encode(var.db.password)", {"db-password-value"}),
        (
            "  api_keys = { for k, v in var.extensions : v.name => v.api_key }",
            {
                "opensearch-plugin",
                "search-api-key-1",
                "payments-plugin",
                "stripe-api-key-2",
            },
        ),
        (
            "  password = var.extensions[var.env].api_key",
            {
                "opensearch-plugin",
                "search-api-key-1",
                "payments-plugin",
                "stripe-api-key-2",
            },
        ),
        (
            '  password = "${var.db.host}:${var.db.password}"',
            {"db.internal.example", "db-password-value"},
        ),
        ("  names = [for k, v in var.extensions : v.name]", set()),  # not a sensitive input
    ],
)
def test_only_the_part_a_sensitive_input_receives_is_masked(
    tmp_path: Path, argument: str, secret: set[str]
) -> None:
    assert _narrow(tmp_path, argument) == secret


def test_the_extension_names_stay_readable_when_only_their_keys_are_secret(
    tmp_path: Path,
) -> None:
    found = _narrow(
        tmp_path,
        "  api_keys = { for k, v in var.extensions : k => v.api_key }\n"
        "  names = [for k, v in var.extensions : v.name]",
    )
    assert found == {"search-api-key-1", "stripe-api-key-2"}
    for readable in ("opensearch-plugin", "payments-plugin", "search", "stripe"):
        assert readable not in found


def test_narrowing_follows_modules_within_modules(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        {
            "main.tf": 'variable "cfg" {}\nvariable "pw" {}\nvariable "region" {}\n'
            'module "mid" {\n  source = "./mid"\n  settings = var.cfg\n'
            "  pair = { password = var.pw, region = var.region }\n}\n",
            "mid/main.tf": 'variable "settings" {}\nvariable "pair" {}\n'
            'module "leaf" {\n  source = "../leaf"\n  secret = var.settings.password\n'
            "  other = var.pair.password\n}\n",
            "leaf/main.tf": 'variable "secret" {\n  sensitive = true\n}\n'
            'variable "other" {\n  sensitive = true\n}\n',
        },
    )
    found = _found(
        root,
        'cfg = { password = "nested-password", region = "eu-north-1" }\n'
        'pw = "pair-password"\nregion = "ap-south-1"\n',
    )
    assert found == {"nested-password", "pair-password"}


def test_narrowed_values_from_the_environment_and_defaults(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        {
            "main.tf": 'variable "extensions" {\n  default = {\n'
            '    a = { name = "default-name", api_key = "default-api-key" }\n  }\n}\n'
            'variable "db" {}\n'
            'module "app" {\n  source = "./app"\n'
            "  api_keys = { for k, v in var.extensions : k => v.api_key }\n"
            "  password = var.db.password\n}\n",
            "app/main.tf": CHILD,
        },
    )
    found = _found(
        root,
        env={
            "TF_VAR_db": '{ host = "env-host", password = "env-db-password" }',
        },
    )
    assert found == {"default-api-key", "env-db-password"}
    # A value that is not the shape the path expects is masked whole: Terraform may quote
    # it when it refuses it.
    assert _found(root, 'db = "not-an-object-value"\n') == {
        "default-api-key",
        "not-an-object-value",
    }


# --- end to end, with the real Terraform ------------------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_an_ephemeral_value_terraform_quotes_is_masked(
    author: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    (infra_repo / "terraform/ephemeral.tf").write_text(
        'variable "session" {\n  type      = string\n  ephemeral = true\n'
        "  validation {\n    condition     = length(var.session) < 5\n"
        '    error_message = "The session must be short."\n  }\n}\n'
    )
    tfvars = infra_repo / "terraform/environments/dev/terraform.tfvars"
    tfvars.write_text(tfvars.read_text() + '\nsession = "ephemeral-session-value"\n')
    ticket = drain(file_dev(author, commit_sha=commit_all(infra_repo, "an ephemeral input")))
    assert ticket.status == TicketStatus.PLAN_FAILED
    log = ticket.runs.get().log
    assert "The session must be short." in log and "session = " in log
    assert "ephemeral-session-value" not in log and MASK in log


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_sensitive_default_in_a_file_that_cannot_be_parsed_is_masked(
    author: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    (infra_repo / "terraform/broken.tf").write_text(
        'variable "signing" {\n  type      = string\n  sensitive = true\n'
        '  default   = "default-signing-secret" oops\n}\n'
    )
    ticket = drain(file_dev(author, commit_sha=commit_all(infra_repo, "a broken file")))
    assert ticket.status == TicketStatus.PLAN_FAILED
    log = ticket.runs.get().log
    assert "Missing newline after argument" in log and "default   = " in log
    assert "default-signing-secret" not in log and MASK in log


EXTENSION_STACK = """
variable "extensions" {
  type = map(object({ name = string, api_key = string }))
}
module "extensions" {
  source   = "./modules/extensions"
  api_keys = { for k, v in var.extensions : k => v.api_key }
  names    = { for k, v in var.extensions : k => v.name }
}
"""
EXTENSION_MODULE = """
variable "api_keys" {
  type      = map(string)
  sensitive = true
}
variable "names" {
  type = map(string)
}
resource "terraform_data" "extension" {
  for_each = var.names
  input    = each.value
}
resource "terraform_data" "key" {
  input = var.api_keys
}
"""


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_extension_names_read_in_the_log_and_their_keys_never(
    author: User,
    infra_repo: Path,
    inline: list[int],
) -> None:
    (infra_repo / "terraform/extensions.tf").write_text(EXTENSION_STACK)
    (infra_repo / "terraform/modules/extensions").mkdir()
    (infra_repo / "terraform/modules/extensions/main.tf").write_text(EXTENSION_MODULE)
    tfvars = infra_repo / "terraform/environments/dev/terraform.tfvars"
    tfvars.write_text(
        tfvars.read_text() + "\nextensions = {\n"
        '  pgvector = { name = "vector-search", api_key = "pgvector-license-key" }\n'
        '  timescale = { name = "time-series", api_key = "timescale-license-key" }\n}\n'
    )
    ticket = drain(file_dev(author, commit_sha=commit_all(infra_repo, "extensions")))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    plan = ticket.runs.get(kind=RunKind.PLAN).log
    # Names and keys of the map read as Terraform prints them...
    assert 'module.extensions.terraform_data.extension["pgvector"]' in plan
    assert '"vector-search"' in plan and '"time-series"' in plan
    # ...and the keys' values never, in any run.
    for run in ticket.runs.all():
        assert "license-key" not in run.log


def test_each_module_is_read_once_however_many_calls_reach_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve levels of modules each calling the next twice: 4,096 walks unless each
    directory is read once (a configuration is hostile code)."""
    from deployments.terraform import sensitive

    files = {"main.tf": 'variable "top" {}\nmodule "a" {\n  source = "./m0"\n  x = var.top\n}\n'}
    for level in range(12):
        files[f"m{level}/main.tf"] = (
            'variable "x" {\n  sensitive = true\n}\n'
            + "".join(
                f'module "c{n}" {{\n  source = "../m{level + 1}"\n  x = var.x\n}}\n' for n in (1, 2)
            )
            if level < 11
            else 'variable "x" {\n  sensitive = true\n}\n'
        )
    root = _config(tmp_path, files)
    reads: list[Path] = []
    original = sensitive.module_files

    def counting(module_dir: Path, **kwargs: object) -> object:
        reads.append(module_dir)
        return original(module_dir)

    monkeypatch.setattr(sensitive, "module_files", counting)
    assert _found(root, 'top = "fanned-out-secret"\n') == {"fanned-out-secret"}
    assert len(reads) == 13 and len(set(reads)) == 13


def test_a_conditional_masks_what_it_names_and_a_very_long_argument_all(
    tmp_path: Path,
) -> None:
    argument = '  password = var.db.password == "" ? var.user : var.db.password'
    assert _narrow(tmp_path, argument) == {"db-password-value", "service-user-name"}
    long_for = (
        "  api_keys = { for k, v in var.extensions : k => v.api_key if "
        + " && ".join(['v.name != "x"'] * 200)
        + " }"
    )
    # Too long to narrow: every extension's every value.
    assert _narrow(tmp_path, long_for) == {
        "opensearch-plugin",
        "search-api-key-1",
        "payments-plugin",
        "stripe-api-key-2",
    }
