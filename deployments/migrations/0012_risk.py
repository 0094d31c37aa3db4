"""Scored risk on tickets; approval rules by risk level on environments (prod seeded:
a high-risk ticket needs one more lead, a high-risk emergency both leads)."""

from django.db import migrations, models

PROD_RISK_RULES = {
    "high": {
        "approval_rule": {
            "all_of": ["tech_lead", "devops_lead"],
            "any_of": ["tech_lead", "devops_lead"],
            "count": 1,
        },
        "emergency_approval_rule": {"all_of": ["tech_lead", "devops_lead"]},
    }
}


def seed(apps, schema_editor):
    Environment = apps.get_model("deployments", "Environment")
    Environment.objects.filter(name="prod").update(risk_rules=PROD_RISK_RULES)


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0010_windows_freezes_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="risk_rules",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="ticket",
            name="risk",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
