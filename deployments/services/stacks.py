"""Stacks (docs/stacks.md): where each Terraform root lives and how it is run, declaring
stacks and their dependencies (a cycle is refused), and what a run of one may read of the
stacks it depends on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction

from deployments import policy
from deployments import terraform as tf
from deployments.lib import validation
from deployments.lib.locks import EnvironmentLock
from deployments.models import DEFAULT_STACK, Stack
from deployments.services._base import InputError
from deployments.services.audit import audit_record

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def stack_branch(stack: Stack) -> str:
    return stack.branch or settings.INFRA_BRANCH


def stack_root(stack: Stack) -> str:
    return stack.root_dir or settings.TERRAFORM_DIR


def stack_repo(stack: Stack | None) -> tf.InfraRepo:
    """The stack's repository (blank: INFRA_REPO), with the credentials its
    ``repository_credentials`` names read from the process environment now."""
    if stack is None or not stack.repository:
        return tf.InfraRepo(location=settings.INFRA_REPO, cache_dir=settings.TERRAFORM_HOME)
    location = stack.repository
    if stack.repository_credentials:
        secret = os.environ.get(stack.repository_credentials, "")
        parts = urlsplit(location)
        if secret and parts.scheme in ("https", "http"):
            user, _, token = secret.partition(":")
            userinfo = quote(user, safe="") + (f":{quote(token, safe='')}" if token else "")
            location = urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    return tf.InfraRepo(location=location, cache_dir=settings.TERRAFORM_HOME / "repos" / stack.name)


def stack_backend_config(stack: Stack) -> tuple[str, ...]:
    """The stack's -backend-config items: its own, else TERRAFORM_BACKEND_CONFIG, whose local
    ``workspace_dir`` gets a folder per stack other than ``default`` (whose state stays
    where it always was)."""
    if stack.backend_config:
        return tuple(str(item) for item in stack.backend_config)
    items = [str(item) for item in settings.TERRAFORM_BACKEND_CONFIG]
    if stack.name == DEFAULT_STACK:
        return tuple(items)
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "workspace_dir" and value.strip():
            value = str(stacks_state_root() / stack.name)
            item = f"workspace_dir={value}"
        out.append(item)
    return tuple(out)


def stacks_state_root() -> Path:
    """Where the local states of stacks other than ``default`` live: beside its folder."""
    for item in settings.TERRAFORM_BACKEND_CONFIG:
        key, sep, value = str(item).partition("=")
        if sep and key.strip() == "workspace_dir" and value.strip():
            base = Path(value.strip())
            return base.parent / f"{base.name}-stacks"
    return settings.TERRAFORM_HOME / "state-stacks"


def local_state_file(stack: Stack, workspace: str) -> Path | None:
    """The state file of ``stack``'s ``workspace`` on a local backend (None otherwise)."""
    for item in stack_backend_config(stack):
        key, sep, value = item.partition("=")
        if sep and key.strip() == "workspace_dir" and value.strip():
            return Path(value.strip()) / workspace / "terraform.tfstate"
    return None


def state_variable(stack_name: str) -> str:
    """The Terraform variable through which a dependent stack learns where ``stack_name``'s
    state of the same workspace is: ``<name>_state_path`` (dashes become underscores)."""
    return f"{stack_name.replace('-', '_')}_state_path"


@dataclass(frozen=True)
class UpstreamStates:
    """What a run of a stack is given of the stacks it depends on."""

    env: dict[str, str]  # TF_VAR_<name>_state_path → the state file
    readonly: tuple[Path, ...]  # the state folders the sandbox mounts read-only


def upstream_states(stack: Stack, workspace: str) -> UpstreamStates:
    """For each stack ``stack`` depends on with a local backend: the path of its state of
    the same workspace as ``TF_VAR_<name>_state_path`` (read by ``terraform_remote_state``
    with ``backend = "local"``), and its folder, mounted read-only in the sandbox when it
    exists. Terraform refuses a remote state that has no file: guard the data source with
    ``fileexists`` (sample_stack/stacks/app)."""
    env: dict[str, str] = {}
    readonly: list[Path] = []
    for upstream in stack.depends_on.all().order_by("name"):
        path = local_state_file(upstream, workspace)
        if path is None:
            continue
        env[f"TF_VAR_{state_variable(upstream.name)}"] = str(path)
        if path.parent.is_dir():  # none yet: never deployed there (the path names no file)
            readonly.append(path.parent)
    return UpstreamStates(env=env, readonly=tuple(readonly))


def stack_for_ticket(name: str) -> Stack:
    """The stack a new ticket names: required when there is more than one (400 otherwise)."""
    name = (name or "").strip()
    if name:
        stack = Stack.objects.filter(name=name).first()
        if stack is None:
            names = ", ".join(Stack.objects.values_list("name", flat=True)) or "none"
            raise InputError("stack", f"unknown stack {name!r}; one of: {names}")
        return stack
    stacks = list(Stack.objects.all()[:2])
    if len(stacks) > 1:
        names = ", ".join(Stack.objects.values_list("name", flat=True))
        raise InputError("stack", f"stack is required (there are several: {names})")
    return stacks[0] if stacks else Stack.default()


@dataclass(frozen=True)
class StackInput:
    name: str
    description: str = ""
    repository: str = ""
    repository_credentials: str = ""
    webhook_secret_env: str = ""
    web_url: str = ""
    branch: str = ""
    root_dir: str = ""
    var_file_pattern: str = ""
    policy_dir: str = ""
    backend_config: tuple[str, ...] = ()
    require_lock_file: bool = False
    environment_rules: dict[str, Any] | None = None
    depends_on: tuple[str, ...] = ()


def clean_stack(data: StackInput) -> dict[str, Any]:
    if not validation.STACK_NAME.fullmatch(data.name):
        raise InputError("name", "name must be a lowercase slug (letters, digits, - and _)")
    for field in (
        "description",
        "repository",
        "branch",
        "root_dir",
        "var_file_pattern",
        "policy_dir",
    ):
        value = getattr(data, field)
        if validation.line_problem(value):
            raise InputError(field, f"{field} {validation.LINE_PROBLEM}")
    if "@" in urlsplit(data.repository).netloc:
        raise InputError(
            "repository",
            "repository must not hold credentials: name an environment variable in "
            "repository_credentials instead",
        )
    for field in ("repository_credentials", "webhook_secret_env"):
        value = getattr(data, field)
        if value and not _ENV_NAME.match(value):
            raise InputError(field, f"{field} must name an environment variable (A-Z, 0-9, _)")
    for field in ("root_dir", "var_file_pattern", "policy_dir"):
        value = getattr(data, field)
        if value and (value.startswith("/") or ".." in Path(value).parts):
            raise InputError(field, f"{field} must be a relative path inside the repository")
    if not all(isinstance(item, str) and "=" in item for item in data.backend_config):
        raise InputError("backend_config", "backend_config items are key=value strings")
    rules = data.environment_rules or {}
    if not isinstance(rules, dict) or not all(
        isinstance(rule, dict)
        and isinstance(rule.get("required_roles", []), list)
        and set(rule) <= {"required_roles"}
        for rule in rules.values()
    ):
        raise InputError(
            "environment_rules",
            'environment_rules is {"<environment>": {"required_roles": ["<role>", ...]}}',
        )
    return {
        "description": data.description,
        "repository": data.repository,
        "repository_credentials": data.repository_credentials,
        "webhook_secret_env": data.webhook_secret_env,
        "web_url": data.web_url,
        "branch": data.branch,
        "root_dir": data.root_dir,
        "var_file_pattern": data.var_file_pattern,
        "policy_dir": data.policy_dir.rstrip("/"),
        "backend_config": list(data.backend_config),
        "require_lock_file": data.require_lock_file,
        "environment_rules": rules,
    }


def check_graph(data: StackInput) -> list[Stack]:
    """The stacks ``data`` depends on, once checked: all exist and form no cycle (400
    naming it)."""
    upstreams = list(Stack.objects.filter(name__in=data.depends_on))
    unknown = sorted(set(data.depends_on) - {s.name for s in upstreams})
    if unknown:
        raise InputError("depends_on", f"unknown stacks: {', '.join(unknown)}")
    graph: dict[str, set[str]] = {}
    for name, upstream in Stack.depends_on.through.objects.values_list(
        "from_stack__name", "to_stack__name"
    ):
        graph.setdefault(name, set()).add(upstream)
    graph[data.name] = {s.name for s in upstreams}
    policy.stacks.check_no_cycle(graph, data.name)
    return upstreams


def stack_save(*, actor: Any, data: StackInput) -> Stack:
    """Declare or change a stack and its dependencies; a dependency cycle is refused (400
    naming it) and nothing is written."""
    fields = clean_stack(data)
    with transaction.atomic():
        # Serialise declarations: two changes at once could each close half of a cycle.
        list(Stack.objects.select_for_update().values_list("pk", flat=True))
        upstreams = check_graph(data)
        stack, created = Stack.objects.select_for_update().get_or_create(
            name=data.name, defaults=fields
        )
        if not created:
            for key, value in fields.items():
                setattr(stack, key, value)
            stack.save()
        stack.depends_on.set(upstreams)
        audit_record(
            actor=actor,
            action="stack.create" if created else "stack.update",
            data={
                "stack": stack.name,
                **{k: v for k, v in fields.items() if k != "description"},
                "depends_on": sorted(s.name for s in upstreams),
            },
        )
    return stack


def stack_lock(environment_id: int, stack_id: int) -> EnvironmentLock:
    """The apply lock of a stack in an environment. The ``default`` stack keeps the
    environment's own lock (as before stacks: a worker of the previous release and one of
    this one exclude each other); every other stack has one of its own there."""
    default_id = Stack.objects.filter(name=DEFAULT_STACK).values_list("pk", flat=True).first()
    return EnvironmentLock(environment_id, None if stack_id == default_id else stack_id)
