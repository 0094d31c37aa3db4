from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The domain: tickets, approvals, Terraform runs and the audit trail."""

    name = "deployments"
    verbose_name = "Deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # signals: sign-ins and failed sign-ins go to the audit trail; metrics: registers
        # the percentile aggregate the metrics need on every SQLite connection.
        # checks: `check --deploy` warns when Terraform runs unisolated.
        from . import (
            checks,  # noqa: F401
            metrics,  # noqa: F401
            signals,  # noqa: F401
        )
