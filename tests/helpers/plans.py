"""`terraform show -json` documents for the plan-summary and risk tests.

``tests/data/plans/real-*.json`` are made by the real binary (imports, ``moved`` and
``removed`` blocks on ``null_resource`` and ``terraform_data``, which work offline);
``aws-*.json`` are written by hand in the same format, following
https://developer.hashicorp.com/terraform/internals/json-format, for AWS plans that
cannot be made offline (and for action invocations, which need Terraform 1.14).

Regenerate the real ones (after a Terraform upgrade):

    .venv/bin/python -m tests.plan_documents
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data" / "plans"

_VERSIONS = """
terraform {
  required_providers {
    null = { source = "hashicorp/null", version = "2.1.2" }
  }
}
"""
_STORE_MODULE = """
variable "name" { type = string }
resource "null_resource" "bucket" {
  triggers = { name = var.name }
}
"""

# name -> (configuration applied first, configuration planned against its state)
REAL_PLANS: dict[str, tuple[str, str]] = {
    "move-only": (
        """
resource "null_resource" "queue" { triggers = { name = "jobs" } }
resource "null_resource" "bucket" { triggers = { name = "media" } }
module "store" {
  source = "./modules/store"
  name   = "other"
}
""",
        """
resource "null_resource" "jobs_queue" { triggers = { name = "jobs" } }
moved {
  from = null_resource.queue
  to   = null_resource.jobs_queue
}
module "media" {
  source = "./modules/store"
  name   = "other"
}
moved {
  from = module.store
  to   = module.media
}
module "archive" {
  source = "./modules/store"
  name   = "media"
}
moved {
  from = null_resource.bucket
  to   = module.archive.null_resource.bucket
}
""",
    ),
    "import-only": (
        """
resource "terraform_data" "keep" { input = "kept" }
""",
        """
resource "terraform_data" "keep" { input = "kept" }
import {
  to = terraform_data.adopted
  id = "existing-object-id"
}
resource "terraform_data" "adopted" {}
""",
    ),
    "forget-only": (
        """
resource "terraform_data" "keep" { input = "kept" }
resource "terraform_data" "legacy" { input = "legacy" }
""",
        """
resource "terraform_data" "keep" { input = "kept" }
removed {
  from = terraform_data.legacy
  lifecycle {
    destroy = false
  }
}
""",
    ),
    "mixed": (
        """
resource "null_resource" "old_name" { triggers = { v = "1" } }
resource "terraform_data" "legacy" { input = "legacy" }
resource "terraform_data" "doomed" { input = "doomed" }
resource "terraform_data" "changing" { input = "before" }
""",
        """
resource "null_resource" "new_name" { triggers = { v = "1" } }
moved {
  from = null_resource.old_name
  to   = null_resource.new_name
}
removed {
  from = terraform_data.legacy
  lifecycle {
    destroy = false
  }
}
import {
  to = terraform_data.adopted
  id = "adopted-id"
}
resource "terraform_data" "adopted" {}
resource "terraform_data" "changing" { input = "after" }
resource "terraform_data" "fresh" { input = "fresh" }
""",
    ),
}


def _terraform(workdir: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        ["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"terraform {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def make_real_plan(workdir: Path, name: str, mirror: Path) -> dict[str, Any]:
    """Apply the first configuration of ``name``, then plan the second: the plan's JSON."""
    before, after = REAL_PLANS[name]
    (workdir / "modules/store").mkdir(parents=True, exist_ok=True)
    (workdir / "modules/store/main.tf").write_text(_STORE_MODULE)
    (workdir / "versions.tf").write_text(_VERSIONS)
    rc = workdir.parent / f"{workdir.name}.tfrc"
    rc.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{ path = {json.dumps(str(mirror))} }}\n"
        "}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(workdir),
        "TF_CLI_CONFIG_FILE": str(rc),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
    }
    (workdir / "main.tf").write_text(before)
    _terraform(workdir, env, "init", "-input=false", "-no-color")
    _terraform(workdir, env, "apply", "-auto-approve", "-input=false", "-no-color")
    (workdir / "main.tf").write_text(after)
    _terraform(workdir, env, "init", "-input=false", "-no-color")  # modules renamed
    _terraform(workdir, env, "plan", "-input=false", "-no-color", "-out=plan.tfplan")
    return dict(json.loads(_terraform(workdir, env, "show", "-json", "plan.tfplan")))


def load(name: str) -> dict[str, Any]:
    """A vendored document: ``real-<case>`` or ``aws-<case>``."""
    return dict(json.loads((DATA / f"{name}.json").read_text()))


def main() -> None:
    import sys
    import tempfile

    mirror = Path(sys.prefix) / "share" / "terraform-providers"
    DATA.mkdir(parents=True, exist_ok=True)
    for name in REAL_PLANS:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp) / "root"
            workdir.mkdir()
            document = make_real_plan(workdir, name, mirror)
        (DATA / f"real-{name}.json").write_text(json.dumps(document, indent=1) + "\n")
        print(f"wrote real-{name}.json (Terraform {document.get('terraform_version')})")


if __name__ == "__main__":
    main()
