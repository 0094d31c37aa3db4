"""The Terraform runner: the only package that runs the binary (or git)."""

from deployments.terraform.runner import (
    ApplyResult,
    CheckResult,
    DriftResult,
    PlanResult,
    RunSpec,
    TerraformNotFound,
    apply,
    check,
    drift,
    find_binary,
    plan,
    version,
)
from deployments.terraform.source import SHA_RE, InfraRepo, SourceError

__all__ = [
    "SHA_RE",
    "ApplyResult",
    "CheckResult",
    "DriftResult",
    "InfraRepo",
    "PlanResult",
    "RunSpec",
    "SourceError",
    "TerraformNotFound",
    "apply",
    "check",
    "drift",
    "find_binary",
    "plan",
    "version",
]
