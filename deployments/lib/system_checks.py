"""System checks: `manage.py check --deploy` says what the deployment leaves open."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def terraform_sandbox_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """TERRAFORM_SANDBOX=none: the code in every commit runs as the worker, unisolated."""
    if settings.TERRAFORM_SANDBOX != "none":
        return []
    return [
        Warning(
            "Terraform runs are not isolated (TERRAFORM_SANDBOX=none): the code in any "
            "commit (plan-time functions, providers, local-exec) runs as the worker's user "
            "and can read its secrets, the database and other environments' state.",
            hint="Unset TERRAFORM_SANDBOX (bubblewrap) or set it to container; "
            "see docs/security.md.",
            id="deployments.W017",
        )
    ]
