from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The domain: tickets, approvals, Terraform runs and the audit trail."""

    name = "deployments"
    verbose_name = "Deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Sign-ins and failed sign-ins go to the audit trail.
        from . import signals  # noqa: F401
