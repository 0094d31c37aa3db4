"""Make the offline sample stack into the local infrastructure repository tickets point at."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.terraform.source import InfraRepo, SourceError, create_repository


class Command(BaseCommand):
    help = (
        "Create INFRA_REPO from sample_stack/ as a git repository with a main branch (if absent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", default="", help="Where to create it (default: INFRA_REPO).")

    def handle(self, *args: Any, **options: Any) -> None:
        location = options["path"] or settings.INFRA_REPO
        # Not through Path first: it would fold a URL's "//" and make it look local.
        repo = InfraRepo(location=location, cache_dir=settings.TERRAFORM_HOME)
        target = Path(location)
        if not repo.is_local:
            raise CommandError(f"INFRA_REPO {repo.display_location} is remote; nothing to create")
        if (target / ".git").exists():
            self.stdout.write(
                f"infrastructure repository: {target} (main at "
                f"{repo.branch_tip(settings.INFRA_BRANCH)[:10]})"
            )
            return
        try:
            sha = create_repository(
                Path(settings.BASE_DIR) / "sample_stack", target, branch=settings.INFRA_BRANCH
            )
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"infrastructure repository created: {target} (main at {sha[:10]})")
