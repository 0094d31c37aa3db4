"""Seed the three environments of SPEC §1 with their policy, and the role groups of SPEC §2."""

import datetime as dt

from django.db import migrations

ROLES = ["developer", "lead_developer", "tech_lead", "devops_lead", "qa", "operations"]
DEV_TEAM = ["developer", "lead_developer", "tech_lead", "devops_lead"]

ENVIRONMENTS = [
    {
        "name": "dev",
        "display_name": "Development",
        "position": 1,
        "purpose": "Feature development and testing; deploys automatically on merge to main.",
        "workspace": "dev",
        "var_file": "environments/dev/terraform.tfvars",
        "approval_rule": {},
        "emergency_approval_rule": {},
        "auto_deploy": True,
        "deploy_on_merge": True,
        "window_days": [],
        "window_start": None,
        "window_end": None,
        "monitoring_minutes": 0,
        "view_groups": DEV_TEAM + ["qa", "operations"],
        "file_groups": DEV_TEAM,
        "deploy_groups": DEV_TEAM,
        "requires_change_details": False,
        "requires_staging_evidence": False,
        "requires_qa_signoff": False,
    },
    {
        "name": "staging",
        "display_name": "Staging",
        "position": 2,
        "purpose": "Pre-production validation by QA; one lead approves, then a manual deploy.",
        "workspace": "staging",
        "var_file": "environments/staging/terraform.tfvars",
        "approval_rule": {"any_of": ["lead_developer", "tech_lead"], "count": 1},
        "emergency_approval_rule": {"any_of": ["lead_developer", "tech_lead"], "count": 1},
        "auto_deploy": False,
        "deploy_on_merge": False,
        "window_days": [],
        "window_start": None,
        "window_end": None,
        "monitoring_minutes": 0,
        "view_groups": DEV_TEAM + ["qa", "operations"],
        "file_groups": DEV_TEAM + ["qa"],
        "deploy_groups": DEV_TEAM + ["qa"],
        "requires_change_details": False,
        "requires_staging_evidence": False,
        "requires_qa_signoff": True,
    },
    {
        "name": "prod",
        "display_name": "Production",
        "position": 3,
        "purpose": "Live customer traffic; Tech Lead and DevOps Lead approve, operations deploy in the window.",
        "workspace": "prod",
        "var_file": "environments/prod/terraform.tfvars",
        "approval_rule": {"all_of": ["tech_lead", "devops_lead"]},
        "emergency_approval_rule": {"any_of": ["tech_lead", "devops_lead"], "count": 1},
        "auto_deploy": False,
        "deploy_on_merge": False,
        "window_timezone": "America/New_York",
        "window_days": [2, 4],
        "window_start": dt.time(2, 0),
        "window_end": dt.time(4, 0),
        "monitoring_minutes": 60,
        "view_groups": DEV_TEAM + ["qa", "operations"],
        "file_groups": DEV_TEAM + ["operations"],
        "deploy_groups": ["operations"],
        "requires_change_details": True,
        "requires_staging_evidence": True,
        "requires_qa_signoff": False,
    },
]


def seed(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Environment = apps.get_model("deployments", "Environment")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    for spec in ENVIRONMENTS:
        Environment.objects.update_or_create(name=spec["name"], defaults=spec)


def unseed(apps, schema_editor):
    apps.get_model("deployments", "Environment").objects.filter(
        name__in=[e["name"] for e in ENVIRONMENTS], tickets__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
