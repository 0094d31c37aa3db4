"""API keys stored hashed, Idempotency-Key records; existing DRF tokens become hashed keys.

Each existing ``authtoken`` token is hashed into an ApiKey (scope full, named "migrated
token", prefix its first 8 characters) and the plaintext row is deleted: the same
``Authorization: Token <key>`` keeps working, and the database no longer holds the secret.
"""

import hashlib

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def hash_drf_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiKey = apps.get_model("deployments", "ApiKey")
    for token in Token.objects.all():
        ApiKey.objects.create(
            user_id=token.user_id,
            name="migrated token",
            prefix=token.key[:8],
            digest=hashlib.sha256(token.key.encode()).hexdigest(),
            scope="full",
            created_at=token.created,
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0013_evidence"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("prefix", models.CharField(db_index=True, max_length=16)),
                ("digest", models.CharField(max_length=64)),
                (
                    "scope",
                    models.CharField(
                        choices=[
                            ("full", "Full (everything the user may do)"),
                            ("ci", "CI (file tickets, plan, post checks and evidence, read)"),
                        ],
                        default="full",
                        max_length=16,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_keys",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "API key",
                "ordering": ["-created_at", "-pk"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("scope__in", ["full", "ci"])), name="apikey_scope_valid"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=255)),
                ("method", models.CharField(max_length=8)),
                ("path", models.CharField(max_length=500)),
                ("request_digest", models.CharField(max_length=64)),
                ("response_status", models.PositiveSmallIntegerField()),
                (
                    "response_body",
                    models.JSONField(
                        encoder=django.core.serializers.json.DjangoJSONEncoder, null=True
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="idempotency_records",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "key"), name="idempotency_user_key_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop),
    ]
