"""Prod tickets, runs and logs are for operations, the prod approvers and their author
(SPEC §2): the other developers and QA no longer see them (they still file, and see their own)."""

from django.db import migrations

PROD_VIEW_GROUPS = ["tech_lead", "devops_lead", "operations"]
PREVIOUS = ["developer", "lead_developer", "tech_lead", "devops_lead", "qa", "operations"]


def seed(apps, schema_editor):
    apps.get_model("deployments", "Environment").objects.filter(name="prod").update(
        view_groups=PROD_VIEW_GROUPS
    )


def unseed(apps, schema_editor):
    apps.get_model("deployments", "Environment").objects.filter(name="prod").update(
        view_groups=PREVIOUS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0005_run_base_state"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
