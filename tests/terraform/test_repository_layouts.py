"""Repositories as real teams lay them out (issue 18): a root whose modules live beside it
(``source = "../../modules/db"``) plans and applies; a module path that leaves the
repository, by ``..`` or through a symbolic link, is refused with a clear error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.choices import RunKind, TicketStatus
from deployments.terraform.redact import MASK
from deployments.terraform.source import InfraRepo, SourceError, commit_all, create_repository
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev

ROOT_DIR = "stacks/media"
VERSIONS = """
terraform {
  required_providers {
    null = { source = "hashicorp/null", version = "= 2.1.2" }
  }
  backend "local" {}
}
"""
ROOT = """
variable "db_phrase" {
  type = string
}
variable "names" {
  type = list(string)
}
module "db" {
  source   = "../../modules/db"
  name     = "media-db"
  password = var.db_phrase
}
module "names" {
  source = "../../modules/names"
  names  = var.names
}
output "db_id" {
  value = module.db.id
}
"""
DB_MODULE = """
variable "name" {
  type = string
}
variable "password" {
  type      = string
  sensitive = true
}
resource "null_resource" "instance" {
  triggers = {
    name     = var.name
    password = var.password
  }
}
output "id" {
  value = null_resource.instance.id
}
"""
NAMES_MODULE = """
variable "names" {
  type = list(string)
}
module "each" {
  source = "../shared/tagged"
  for_each = toset(var.names)
  name     = each.value
}
"""
TAGGED_MODULE = """
variable "name" {
  type = string
}
resource "terraform_data" "tag" {
  input = file("${path.module}/../../../policies/${var.name}.txt")
}
"""
DEV_VARS = 'db_phrase = "sibling-module-secret"\nnames = ["alpha", "beta"]\n'


def _layout(path: Path) -> Path:
    """A repository laid out as teams do: stacks/<name>/ roots, modules/ beside them, files
    the modules read elsewhere in the repository."""
    files = {
        f"{ROOT_DIR}/main.tf": ROOT,
        f"{ROOT_DIR}/versions.tf": VERSIONS,
        f"{ROOT_DIR}/environments/dev/terraform.tfvars": DEV_VARS,
        f"{ROOT_DIR}/environments/staging/terraform.tfvars": DEV_VARS,
        f"{ROOT_DIR}/environments/prod/terraform.tfvars": DEV_VARS,
        "modules/db/main.tf": DB_MODULE,
        "modules/names/main.tf": NAMES_MODULE,
        "modules/shared/tagged/main.tf": TAGGED_MODULE,
        "policies/alpha.txt": "alpha policy\n",
        "policies/beta.txt": "beta policy\n",
        "README.md": "Infrastructure\n",
    }
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


@pytest.fixture
def layout_repo(tmp_path: Path, settings: Any) -> Path:
    """The portal's infrastructure repository, laid out with sibling modules."""
    repo = tmp_path / "infra-layout"
    create_repository(_layout(tmp_path / "layout-src"), repo)
    settings.INFRA_REPO = str(repo)
    settings.TERRAFORM_DIR = ROOT_DIR
    settings.TERRAFORM_BACKEND_CONFIG = [f"workspace_dir={tmp_path / 'state'}"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return repo


# --- the export ------------------------------------------------------------------------


def _repo(tmp_path: Path, **extra: str) -> tuple[InfraRepo, str, Path]:
    source = _layout(tmp_path / "src")
    for name, text in extra.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    sha = create_repository(source, tmp_path / "repo")
    return InfraRepo(location=str(tmp_path / "repo"), cache_dir=tmp_path / "home"), sha, source


@pytest.mark.parametrize("cached", [False, True])
def test_the_root_gets_the_modules_and_files_beside_it(tmp_path: Path, cached: bool) -> None:
    repo, sha, _ = _repo(tmp_path)
    dest = tmp_path / "run" / "src"
    if cached:
        root = repo.export_cached(sha, ROOT_DIR, dest, tmp_path / "cache")
    else:
        root = repo.export(sha, ROOT_DIR, dest)
    assert root == dest / ROOT_DIR
    assert (root / "../../modules/db/main.tf").read_text() == DB_MODULE
    assert (root / "../../modules/shared/tagged/main.tf").is_file()
    assert (dest / "policies/alpha.txt").read_text() == "alpha policy\n"


@pytest.mark.parametrize(
    ("module_file", "source", "module_dir"),
    [
        (f"{ROOT_DIR}/escape.tf", "../../../outside", "stacks/media"),
        (f"{ROOT_DIR}/escape.tf", "./../../../../etc", "stacks/media"),
        ("modules/db/escape.tf", "../../../elsewhere", "modules/db"),  # via a module
    ],
)
def test_a_module_path_leaving_the_repository_is_refused(
    tmp_path: Path, module_file: str, source: str, module_dir: str
) -> None:
    block = f'module "sneaky" {{\n  source = "{source}"\n}}\n'
    repo, sha, _ = _repo(tmp_path, **{module_file: block})
    for attempt in ("export", "export_cached"):
        dest = tmp_path / attempt
        with pytest.raises(SourceError) as refused:
            if attempt == "export":
                repo.export(sha, ROOT_DIR, dest)
            else:
                repo.export_cached(sha, ROOT_DIR, dest, tmp_path / "cache")
        assert str(refused.value) == (
            f'module "sneaky" in {module_dir}/: source "{source}" points outside the '
            "repository; a local module must be a directory inside the repository"
        )


def test_a_module_reached_through_a_link_out_of_the_repository_is_refused(
    tmp_path: Path,
) -> None:
    repo, _, _ = _repo(tmp_path)
    work = tmp_path / "repo"  # links made in the repository itself, as git stores them
    outside = tmp_path / "outside-module"
    outside.mkdir()
    (outside / "main.tf").write_text('resource "terraform_data" "x" {}\n')
    os.symlink(outside, work / "modules/linked")  # absolute, out of the tree
    os.symlink("../../../../..", work / "modules/up")  # relative, out of the tree
    (work / f"{ROOT_DIR}/linked.tf").write_text(
        'module "linked" {\n  source = "../../modules/linked"\n}\n'
    )
    sha = commit_all(work, "links out of the repository")
    with pytest.raises(SourceError) as refused:
        repo.export_cached(sha, ROOT_DIR, tmp_path / "run", tmp_path / "cache")
    assert str(refused.value).startswith(
        f'module "linked" in {ROOT_DIR}/: source "../../modules/linked" is not a directory '
        "of the repository at this commit (a link that points outside the repository is not "
        "exported)"
    )
    # The links were not written; a link elsewhere that nothing uses fails nothing.
    assert not (tmp_path / "run/modules/linked").exists()
    (work / f"{ROOT_DIR}/linked.tf").unlink()
    sha = commit_all(work, "drop the linked module")
    root = repo.export_cached(sha, ROOT_DIR, tmp_path / "run2", tmp_path / "cache")
    assert (root / "main.tf").is_file() and not (tmp_path / "run2/modules/up").exists()


def test_a_link_inside_the_repository_is_followed(tmp_path: Path) -> None:
    repo, _, _ = _repo(tmp_path)
    work = tmp_path / "repo"
    os.symlink("db", work / "modules/database")  # an alias, inside the tree
    (work / f"{ROOT_DIR}/alias.tf").write_text(
        'module "alias" {\n  source = "../../modules/database"\n  name = "a"\n'
        '  password = "literal-alias-password"\n}\n'
    )
    sha = commit_all(work, "an alias of a module")
    root = repo.export_cached(sha, ROOT_DIR, tmp_path / "run", tmp_path / "cache")
    assert (root / "../../modules/database/main.tf").read_text() == DB_MODULE


# --- end to end, with the real Terraform ------------------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_root_with_sibling_modules_plans_applies_and_masks_their_secrets(
    author: User,
    layout_repo: Path,
    inline: list[int],
) -> None:
    ticket = drain(file_dev(author))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    plan, apply, check = (ticket.runs.get(kind=kind) for kind in RunKind.values)
    assert "Plan saved: 3 to add, 0 to change, 0 to destroy" in plan.log
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in apply.log
    assert "No changes" in check.log
    # The file read from policies/, outside the root, made it into the plan.
    assert 'module.names.module.each["alpha"].terraform_data.tag' in plan.log
    # The module beside the root declares the password sensitive: masked everywhere.
    for run in (plan, apply, check):
        assert "sibling-module-secret" not in run.log
    body = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["plan_summary"]["add"] == 3


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_module_escaping_the_repository_fails_the_plan_clearly(
    author: User,
    layout_repo: Path,
    inline: list[int],
) -> None:
    (layout_repo / ROOT_DIR / "escape.tf").write_text(
        'module "escape" {\n  source = "../../../state"\n}\n'
    )
    sha = commit_all(layout_repo, "a module outside the repository")
    ticket = drain(file_dev(author, commit_sha=sha))
    assert ticket.status == TicketStatus.PLAN_FAILED
    message = (
        f'module "escape" in {ROOT_DIR}/: source "../../../state" points outside the repository'
    )
    assert message in ticket.status_reason
    run = api_for(author).get(f"/api/v1/runs/{ticket.runs.get().pk}/").json()
    assert run["status"] == "failed" and message in run["error"]
    assert "$ terraform" not in run["log"]  # refused before Terraform ran
    assert MASK not in run["error"]


def test_secrets_passed_to_a_module_beside_the_root_are_known(tmp_path: Path) -> None:
    from deployments.terraform.sensitive import sensitive_values

    repo, sha, _ = _repo(tmp_path)
    tree = tmp_path / "run"
    root = repo.export(sha, ROOT_DIR, tree)
    var_file = root / "environments/dev/terraform.tfvars"
    assert sensitive_values(root, [var_file], {}, repo_root=tree) == ["sibling-module-secret"]


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_terraform_quoting_a_secret_for_a_sibling_module_is_masked(
    author: User,
    layout_repo: Path,
    inline: list[int],
) -> None:
    """The root's variable is not declared sensitive: only the module beside the root says
    its input is. Terraform quotes the var-file line when the root's validation fails."""
    main = layout_repo / ROOT_DIR / "main.tf"
    main.write_text(
        main.read_text().replace(
            'variable "db_phrase" {\n  type = string\n}',
            'variable "db_phrase" {\n  type = string\n  validation {\n'
            "    condition     = length(var.db_phrase) < 8\n"
            '    error_message = "Too long."\n  }\n}',
        )
    )
    ticket = drain(file_dev(author, commit_sha=commit_all(layout_repo, "a password rule")))
    assert ticket.status == TicketStatus.PLAN_FAILED
    log = ticket.runs.get().log
    assert "Too long." in log and "db_phrase = " in log  # Terraform quoted the line
    assert "sibling-module-secret" not in log and MASK in log


@pytest.mark.parametrize(
    "source", ["/etc/terraform", "~/modules/db", "file:///srv/modules/db", "git::/srv/db.git"]
)
def test_a_module_copied_from_the_machine_is_refused(tmp_path: Path, source: str) -> None:
    block = f'module "local_copy" {{\n  source = "{source}"\n}}\n'
    repo, sha, _ = _repo(tmp_path, **{f"{ROOT_DIR}/copy.tf": block})
    with pytest.raises(SourceError) as refused:
        repo.export_cached(sha, ROOT_DIR, tmp_path / "run", tmp_path / "cache")
    assert str(refused.value).startswith(
        f'module "local_copy" in {ROOT_DIR}/: source "{source}" names a path on the machine'
    )


def test_registry_and_remote_modules_are_terraform_s_to_fetch(tmp_path: Path) -> None:
    block = (
        'module "vpc" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n'
        'module "git" {\n  source = "git::https://example.com/profile.git?ref=v1"\n}\n'
    )
    repo, sha, _ = _repo(tmp_path, **{f"{ROOT_DIR}/remote.tf": block})
    root = repo.export_cached(sha, ROOT_DIR, tmp_path / "run", tmp_path / "cache")
    assert (root / "remote.tf").is_file()
