"""Print the -Q list of a Celery worker: the Terraform queues of the environments it serves."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.lib.queues import worker_queues
from deployments.models import Environment


class Command(BaseCommand):
    help = (
        "Print the comma-separated queues for `celery worker -Q`: the Terraform queue of each "
        "named environment (default: all), e.g. `celery -A changecontrol worker -Q "
        '"$(python manage.py worker_queues --environments prod)"` on the hosts that hold '
        "prod's credentials. --portal adds the portal's own queue (webhooks, notifications, "
        "beat's passes). See docs/workers.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--environments",
            default="",
            help="comma-separated environment names (default: every environment)",
        )
        parser.add_argument("--portal", action="store_true", help="also the portal's own queue")

    def handle(self, *args: Any, **options: Any) -> None:
        known = list(
            Environment.objects.order_by("position", "name").values_list("name", flat=True)
        )
        wanted = [name.strip() for name in options["environments"].split(",") if name.strip()]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise CommandError(
                f"no environment {', '.join(map(repr, unknown))}; one of: {', '.join(known)}"
            )
        self.stdout.write(",".join(worker_queues(wanted or known, portal=options["portal"])))
