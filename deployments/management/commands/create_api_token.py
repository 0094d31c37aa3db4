"""Print an API token for a user (creating it if needed)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.services.accounts import api_token_issue


class Command(BaseCommand):
    help = "Print an API token for USERNAME; --rotate replaces an existing one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="Replace the existing token.")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        if not user.is_active:
            raise CommandError(f"user {user.username!r} is inactive")
        # Creating or rotating a token is audited; printing an existing one is not a change.
        token, _ = api_token_issue(
            actor="manage.py create_api_token", user=user, rotate=options["rotate"]
        )
        self.stdout.write(token.key)
