from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The domain: tickets, approvals, Terraform runs and the audit trail."""

    name = "deployments"
    verbose_name = "Deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # signals: sign-ins and failed sign-ins go to the audit trail; metrics: registers
        # the percentile aggregate the metrics need on every SQLite connection;
        # system_checks: `check --deploy` warns when Terraform runs unisolated.
        from deployments import signals  # noqa: F401
        from deployments.lib import system_checks  # noqa: F401
        from deployments.selectors import metrics  # noqa: F401
