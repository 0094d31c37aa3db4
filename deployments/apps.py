from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The domain: tickets, approvals, Terraform runs and the audit trail."""

    name = "deployments"
    verbose_name = "Deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Sign-ins and failed sign-ins go to the audit trail.
        # The percentile aggregate the metrics need, registered on SQLite connections.
        from . import (
            metrics,  # noqa: F401
            signals,  # noqa: F401
        )
