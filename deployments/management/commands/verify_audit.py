"""Check the audit trail's hash chain; exit non-zero naming the first bad event."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.services import audit_verify


class Command(BaseCommand):
    help = "Verify the append-only audit chain."

    def handle(self, *args: Any, **options: Any) -> None:
        ok, message = audit_verify()
        if not ok:
            raise CommandError(message)
        self.stdout.write(message)
