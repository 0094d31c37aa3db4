"""Metrics (docs/metrics.md): each approval records when its ticket entered
awaiting_approval, so the approval-wait figures are a plain aggregate; approvals given
before this are dated from the audit trail (the latest audited entry into
awaiting_approval before the approval), else from their plan finishing. Approvals are
read by when they were given: an index on created_at."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce


def backfill(apps, schema_editor):
    Approval = apps.get_model("deployments", "Approval")
    AuditEvent = apps.get_model("deployments", "AuditEvent")
    TerraformRun = apps.get_model("deployments", "TerraformRun")
    entered = (
        AuditEvent.objects.filter(
            ticket_id=OuterRef("ticket_id"),
            action="ticket.transition",
            data__to="awaiting_approval",
            at__lte=OuterRef("created_at"),
        )
        .order_by("-at", "-id")
        .values("at")[:1]
    )
    plan_finished = TerraformRun.objects.filter(pk=OuterRef("plan_run_id")).values("finished_at")[
        :1
    ]
    Approval.objects.filter(waiting_since__isnull=True).update(
        waiting_since=Coalesce(Subquery(entered), Subquery(plan_finished))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0019_monitoring"),
    ]

    operations = [
        migrations.AddField(
            model_name="approval",
            name="waiting_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="approval",
            index=models.Index(fields=["created_at"], name="approval_created_at"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
