"""The frozen description of a Terraform run (deployments.terraform.RunSpec), from settings
and the run row: the only place a run's binary, repository, workspace and environment
variables are chosen."""

from __future__ import annotations

import logging
import os

from django.conf import settings

from deployments import terraform as tf
from deployments.models import TerraformRun
from deployments.services import rollbacks
from deployments.services._base import infra_repo

log = logging.getLogger(__name__)


def run_spec(run: TerraformRun, *, timeout: int) -> tf.RunSpec:
    """The frozen description of one Terraform run, from settings and the run row."""
    return terraform_spec(
        commit_sha=run.commit_sha,
        workspace=run.workspace,
        var_file=run.var_file,
        timeout=timeout,
        expected_var_file_sha256=rollbacks.expected_var_file_sha256(run),
    )


def terraform_spec(
    *,
    commit_sha: str,
    workspace: str,
    var_file: str,
    timeout: int,
    expected_var_file_sha256: str = "",
) -> tf.RunSpec:
    """A Terraform run of ``commit_sha`` in ``workspace`` with ``var_file``, from settings
    (runs of tickets, and drift checks)."""
    return tf.RunSpec(
        binary=tf.find_binary(settings.TERRAFORM_BIN),
        repo=infra_repo(),
        commit_sha=commit_sha,
        terraform_dir=settings.TERRAFORM_DIR,
        workspace=workspace,
        var_file=var_file,
        expected_var_file_sha256=expected_var_file_sha256,
        provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR,
        plugin_cache=settings.TERRAFORM_HOME / "plugin-cache",
        work_root=settings.TERRAFORM_HOME / "work",
        backend_config=tuple(settings.TERRAFORM_BACKEND_CONFIG),
        timeout=timeout,
        lock_timeout=settings.TERRAFORM_LOCK_TIMEOUT,
        passthrough_env={
            name: os.environ[name]
            for name in settings.TERRAFORM_ENV_PASSTHROUGH
            if name in os.environ
        },
    )
