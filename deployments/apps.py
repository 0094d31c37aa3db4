from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The domain: tickets, approvals, Terraform runs and the audit trail."""

    name = "deployments"
    verbose_name = "Deployments"
    default_auto_field = "django.db.models.BigAutoField"
