"""The Terraform runner: the only package that runs the binary (or git)."""

from .runner import (
    ApplyResult,
    CheckResult,
    PlanResult,
    RunSpec,
    TerraformNotFound,
    apply,
    check,
    find_binary,
    plan,
    version,
)
from .source import SHA_RE, InfraRepo, SourceError

__all__ = [
    "SHA_RE",
    "ApplyResult",
    "CheckResult",
    "InfraRepo",
    "PlanResult",
    "RunSpec",
    "SourceError",
    "TerraformNotFound",
    "apply",
    "check",
    "find_binary",
    "plan",
    "version",
]
