"""Print a new API key for a user (shown once; only its SHA-256 is stored)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.models import ApiKey, ApiKeyScope
from deployments.services import InputError
from deployments.services.apikeys import api_key_create, api_key_revoke

ACTOR = "manage.py create_api_token"


class Command(BaseCommand):
    help = (
        "Create an API key for USERNAME and print it (once: the portal stores only its "
        "digest). --rotate first revokes the user's active keys of the same name."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="script", help="What uses the key (default script).")
        parser.add_argument(
            "--scope", default=ApiKeyScope.FULL, choices=ApiKeyScope.values, help="full or ci."
        )
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after N days.")
        parser.add_argument(
            "--rotate", action="store_true", help="Revoke active keys of this name first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        if not user.is_active:
            raise CommandError(f"user {user.username!r} is inactive")
        if options["rotate"]:
            for old in ApiKey.objects.filter(
                user=user, name=options["name"], revoked_at__isnull=True
            ):
                api_key_revoke(actor=ACTOR, key_id=old.pk, user=user)
        try:
            _, key = api_key_create(
                actor=ACTOR,
                user=user,
                name=options["name"],
                scope=options["scope"],
                expires_days=options["expires_days"],
                via="command",
            )
        except InputError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        self.stdout.write(key)
