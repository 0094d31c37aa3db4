"""Waiting for real components (worker, Terraform) on a loaded machine: poll, never sleep."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.sandbox import real_terraform


def paced_terraform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, commands: tuple[str, ...], seconds: int
) -> Path:
    """A `terraform` that waits before the given commands, as it would on a real cloud (on
    the offline sample stack an apply is over in half a second), then runs the real one.
    The worker process started afterwards reads it from TERRAFORM_BIN."""
    real = real_terraform(monkeypatch)
    wrapper = tmp_path / "paced-bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in {"|".join(commands)}) sleep {seconds} ;; esac\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("TERRAFORM_BIN", str(wrapper))
    return wrapper


def wait_for(predicate: Any, *, timeout: float = 120, what: str = "condition") -> Any:
    """Poll a real component until ``predicate`` returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
