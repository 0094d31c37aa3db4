"""Who may declare, change and lift a freeze, per environment (policy.freeze_roles).

Defaults: in prod the roles that answer for production (Tech Lead, DevOps Lead, Operations);
in dev and staging the leads (Lead Developer included) and Operations. Other environments
get the field's default, prod's set.
"""

from django.db import migrations, models

import deployments.models.environments

LEADS_AND_OPERATIONS = ["lead_developer", "tech_lead", "devops_lead", "operations"]


def seed(apps, schema_editor):
    Environment = apps.get_model("deployments", "Environment")
    Environment.objects.filter(name__in=["dev", "staging"]).update(
        freeze_groups=LEADS_AND_OPERATIONS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0025_rollback_immediate_until"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="freeze_groups",
            field=models.JSONField(
                blank=True, default=deployments.models.environments.default_freeze_groups
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
