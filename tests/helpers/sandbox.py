"""What a test's own Terraform wrapper needs under the sandbox: the host paths it reads (the
real binary it execs) or writes, made visible inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def sandbox_sees(
    monkeypatch: pytest.MonkeyPatch,
    *,
    readonly: tuple[Path, ...] = (),
    writable: tuple[Path, ...] = (),
) -> None:
    """Host paths a test's Terraform wrapper reads (the real binary it execs) or writes (a
    marker), made visible inside the sandbox: in this process's settings and, for a worker
    started afterwards, in its environment."""
    import dataclasses

    from django.conf import settings

    config = settings.TERRAFORM_SANDBOX_CONFIG
    config = dataclasses.replace(
        config,
        readonly_paths=(*config.readonly_paths, *readonly),
        writable_paths=(*config.writable_paths, *writable),
    )
    monkeypatch.setattr(settings, "TERRAFORM_SANDBOX_CONFIG", config)
    monkeypatch.setenv(
        "TERRAFORM_SANDBOX_READONLY_PATHS", ",".join(str(p) for p in config.readonly_paths)
    )
    monkeypatch.setenv(
        "TERRAFORM_SANDBOX_WRITABLE_PATHS", ",".join(str(p) for p in config.writable_paths)
    )


def real_terraform(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real Terraform binary, for a wrapper to exec: readable inside the sandbox."""
    from deployments.terraform.runner import find_binary

    binary = find_binary(os.environ.get("TERRAFORM_BIN", ""))
    sandbox_sees(monkeypatch, readonly=(Path(binary),))
    return binary
