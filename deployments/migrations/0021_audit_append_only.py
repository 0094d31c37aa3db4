"""The audit table refuses UPDATE and DELETE in the database itself (docs/audit.md).

PostgreSQL: a row trigger raising an exception; SQLite: triggers doing RAISE(ABORT).
TRUNCATE is not refused (test databases are emptied with it); in production the app's
role has no TRUNCATE, UPDATE or DELETE grant on the table at all (docs/audit.md).
AuditVerification keeps the last full walk of the chain for the audit page.
"""

from typing import Any

from django.db import migrations, models

from deployments.lib.audit_guard import create_guard, drop_guard


def forwards(apps: Any, schema_editor: Any) -> None:
    create_guard(schema_editor.connection)


def backwards(apps: Any, schema_editor: Any) -> None:
    drop_guard(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("deployments", "0020_metrics")]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.CreateModel(
            name="AuditVerification",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("count", models.PositiveBigIntegerField()),
                ("message", models.TextField()),
                ("bad_event_id", models.BigIntegerField(blank=True, null=True)),
                ("head", models.CharField(blank=True, max_length=64)),
                ("seconds", models.FloatField(default=0)),
                ("source", models.CharField(max_length=32)),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
    ]
