"""The frozen description of a Terraform run (deployments.terraform.RunSpec), from settings
and the run row: the only place a run's binary, repository, workspace, environment variables
and credentials (services.credentials, per environment and phase) are chosen."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from django.conf import settings

from deployments import policy
from deployments import terraform as tf
from deployments.models import Environment, Stack, TerraformRun
from deployments.services import rollbacks
from deployments.services import stacks as stacks_service
from deployments.services._base import infra_repo
from deployments.services.credentials import run_credentials

log = logging.getLogger(__name__)


def run_spec(run: TerraformRun, *, timeout: int, on_line: Callable[[str], None]) -> tf.RunSpec:
    """The frozen description of one Terraform run, from settings and the run row, with the
    credentials of its environment for its phase (which ``on_line`` is told about, never
    their values). Raises CredentialsUnavailable."""
    phase = policy.run_phase(run.kind)
    granted = run_credentials(
        run.environment, phase=phase, subject=f"t{run.ticket_id}-r{run.pk}", timeout=timeout
    )
    on_line(granted.description)
    return terraform_spec(
        environment=run.environment,
        stack=run.stack,
        commit_sha=run.commit_sha,
        workspace=run.workspace,
        var_file=run.var_file,
        timeout=timeout,
        expected_var_file_sha256=rollbacks.expected_var_file_sha256(run),
        credentials_env=granted.env,
    )


def terraform_spec(
    *,
    environment: Environment,
    commit_sha: str,
    workspace: str,
    var_file: str,
    timeout: int,
    expected_var_file_sha256: str = "",
    credentials_env: Mapping[str, str] | None = None,
    stack: Stack | None = None,
) -> tf.RunSpec:
    """A Terraform run of ``commit_sha`` in ``workspace`` with ``var_file``, from settings
    and the environment's provider rules (runs of tickets, drift checks, speculative plans).
    ``credentials_env`` is the run's environment-and-phase credentials (services.credentials);
    of the worker's own environment only the non-secret TERRAFORM_ENV_PASSTHROUGH reaches
    Terraform. The stack (default: Stack.default()) says which repository and root, its
    backend settings, and the upstream stacks' states it may read (docs/stacks.md)."""
    stack = stack or Stack.default()
    upstream = stacks_service.upstream_states(stack, workspace)
    sandbox = settings.TERRAFORM_SANDBOX_CONFIG
    if upstream.readonly:
        sandbox = dataclasses.replace(
            sandbox, readonly_paths=(*sandbox.readonly_paths, *upstream.readonly)
        )
    return tf.RunSpec(
        binary=tf.find_binary(settings.TERRAFORM_BIN),
        repo=stacks_service.stack_repo(stack) if stack.repository else infra_repo(),
        commit_sha=commit_sha,
        terraform_dir=stacks_service.stack_root(stack),
        workspace=workspace,
        var_file=var_file,
        expected_var_file_sha256=expected_var_file_sha256,
        provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR,
        plugin_cache=settings.TERRAFORM_HOME / "plugin-cache",
        work_root=settings.TERRAFORM_HOME / "work",
        backend_config=stacks_service.stack_backend_config(stack),
        timeout=timeout,
        lock_timeout=settings.TERRAFORM_LOCK_TIMEOUT,
        passthrough_env={
            **{
                name: os.environ[name]
                for name in settings.TERRAFORM_ENV_PASSTHROUGH
                if name in os.environ
            },
            **upstream.env,
        },
        credentials_env=dict(credentials_env or {}),
        sandbox=sandbox,
        require_lock_file=environment.require_lock_file or stack.require_lock_file,
        allow_provider_network=environment.allow_provider_network,
        policy_dir=environment.policy_dir,
        policy_plan_max_bytes=settings.POLICY_PLAN_MAX_BYTES,
        stack_policy_dir=stack_policy_dir(stack, environment),
    )


def stack_policy_dir(stack: Stack, environment: Environment) -> str:
    """The stack's own policy folder for a run in ``environment``: none when it is the
    environment's folder itself (evaluated already; twice would name every policy twice)."""
    if not stack.policy_dir:
        return ""
    same = Path(stack.policy_dir) == Path(environment.policy_dir or ".")
    return "" if same and environment.policy_dir else stack.policy_dir
