"""Check the audit trail's hash chain; exit non-zero naming the first bad event."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.services.audit import audit_verify_and_record


class Command(BaseCommand):
    help = (
        "Verify the append-only audit chain: every event's hash and link, and that the "
        "newest event is the chain head. Exits 1 naming the first bad event. The outcome "
        "is kept for the audit page."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report, verification = audit_verify_and_record(source="verify_audit")
        if not report.ok:
            raise CommandError(report.message)
        self.stdout.write(f"{report.message} (walked in {verification.seconds:.1f} s)")
