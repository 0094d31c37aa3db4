"""Run one drift check of an environment now and print what it found."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.choices import DriftStatus
from deployments.models import Environment
from deployments.services.drift import drift_check_open, drift_check_run


class Command(BaseCommand):
    help = (
        "Plan ENVIRONMENT's last deployed commit and var-file with -detailed-exitcode now "
        "(in this process, under the environment lock) and record a drift report; exit "
        "status 2 when it drifted, 1 when the check failed or was skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("environment")

    def handle(self, *args: Any, **options: Any) -> None:
        env = Environment.objects.filter(name=options["environment"]).first()
        if env is None:
            names = ", ".join(Environment.objects.values_list("name", flat=True))
            raise CommandError(f"no environment {options['environment']!r}; one of: {names}")
        check = drift_check_run(check_id=drift_check_open(env, requested_by="check_drift").pk)
        self.stdout.write(f"drift check #{check.pk} of {env.name}: {check.get_status_display()}")
        if check.commit_sha:
            self.stdout.write(f"deployed commit {check.commit_sha} ({check.var_file})")
        if check.status == DriftStatus.DRIFTED:
            s = check.summary
            self.stdout.write(
                f"a plan would add {s.get('add', 0)}, change {s.get('change', 0)}, "
                f"destroy {s.get('destroy', 0)}:"
            )
            for resource in s.get("resources") or []:
                self.stdout.write(f"  {resource.get('action', '?')} {resource.get('address', '')}")
            raise SystemExit(2)
        if check.status != DriftStatus.NO_DRIFT:
            raise CommandError(check.error or check.get_status_display())
