"""Immediate rollbacks record the end of their hour; past it they follow the planned path.

Rollbacks opened before this migration get the hour counted from the rolled-back ticket's
latest succeeded deployment that finished before the rollback was opened (one hour: the
ROLLBACK_IMMEDIATE_MINUTES default), or none when there is no such deployment (then they
are planned: policy.is_immediate_rollback needs a recorded hour).
"""

import datetime as dt

from django.db import migrations, models


def backfill(apps, schema_editor):
    Ticket = apps.get_model("deployments", "Ticket")
    Deployment = apps.get_model("deployments", "Deployment")
    for ticket in Ticket.objects.filter(
        change_type="rollback", rollback_mode="immediate", rollback_immediate_until__isnull=True
    ).exclude(rollback_of__isnull=True):
        undone = (
            Deployment.objects.filter(
                ticket_id=ticket.rollback_of_id,
                outcome="succeeded",
                finished_at__lte=ticket.created_at,
            )
            .order_by("-finished_at", "-pk")
            .first()
        )
        if undone is not None:
            ticket.rollback_immediate_until = undone.finished_at + dt.timedelta(minutes=60)
            ticket.save(update_fields=["rollback_immediate_until"])


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0024_webhook_refusals_and_github_logins"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="rollback_immediate_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
