"""Realistic portal data for the review-surface and every-page browser tests: the demo
accounts with a history of seeded tickets, and a prod ticket under review whose plan
destroys, replaces, updates, creates, imports and moves resources (one value sensitive,
others known only after apply), read through the worker's own summary code."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
from typing import Any

from django.contrib.auth.models import Group, User
from django.utils import timezone

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, Ticket
from deployments.policy.risk import blast_radius
from deployments.services.seeding import seed_history
from deployments.terraform.summary import read_plan_json
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

DEMO = {
    "dev1": ["developer"],
    "dev2": ["developer"],
    "lead1": ["lead_developer"],
    "techlead1": ["tech_lead"],
    "devopslead1": ["devops_lead"],
    "qa1": ["qa"],
    "ops1": ["operations"],
}
SECRET = "s3cr3t-db-master-password"


def demo_users() -> dict[str, User]:
    users = {}
    for name, roles in DEMO.items():
        user = User.objects.create_user(name, f"{name}@example.com", "pw")
        user.groups.set(Group.objects.filter(name__in=roles))
        users[name] = user
    users["admin"] = User.objects.create_superuser("admin", "admin@example.com", "pw")
    return users


def _rc(address: str, actions: list[str], **change: Any) -> dict[str, Any]:
    parts = address.split(".")
    module = ".".join(parts[:2]) if address.startswith("module.") else ""
    return {
        "address": address,
        "module_address": module,
        "type": parts[-2],
        "name": parts[-1],
        "change": {"actions": actions, **change},
    }


PLAN_DOCUMENT: dict[str, Any] = {
    "terraform_version": "1.11.4",
    "resource_changes": [
        _rc(
            "module.database.aws_db_instance.main",
            ["delete", "create"],
            before={"engine_version": "14.9", "instance_class": "db.t3.medium", "password": SECRET},
            after={"engine_version": "16.3", "instance_class": "db.t3.medium", "password": SECRET},
            after_unknown={"endpoint": True, "id": True},
            before_sensitive={"password": True},
            after_sensitive={"password": True},
            replace_paths=[["engine_version"]],
        ),
        _rc("aws_s3_bucket.old_logs", ["delete"], before={"bucket": "acme-old-logs"}),
        _rc(
            "aws_instance.web",
            ["update"],
            before={"instance_type": "t3.small", "tags": {"team": "web", "tier": "front"}},
            after={"instance_type": "t3.large", "tags": {"team": "web", "tier": "edge"}},
            after_unknown={},
        ),
        _rc(
            "aws_sqs_queue.jobs",
            ["create"],
            before=None,
            after={"name": "jobs", "visibility_timeout_seconds": 60},
            after_unknown={"arn": True, "url": True},
        ),
        {
            **_rc("aws_cloudwatch_log_group.app", ["no-op"], before={"name": "app"}),
            "change": {
                "actions": ["no-op"],
                "before": {"name": "app"},
                "after": {"name": "app"},
                "importing": {"id": "app"},
            },
        },
        {
            **_rc("module.cache.aws_elasticache_cluster.main", ["no-op"]),
            "previous_address": "aws_elasticache_cluster.main",
            "change": {"actions": ["no-op"], "before": {"id": "c"}, "after": {"id": "c"}},
        },
    ],
}


def review_summary() -> dict[str, Any]:
    summary, _ = read_plan_json(io.BytesIO(json.dumps(PLAN_DOCUMENT).encode()))
    summary["commit"] = {
        "author": "Alice Example",
        "authored_at": (timezone.now() - dt.timedelta(hours=5)).isoformat(),
        "message": "Upgrade the database to PostgreSQL 16\n\nThe old log bucket goes; "
        "the web tier grows.",
    }
    return summary


def ticket_under_review(author: User, approver: User | None = None) -> Ticket:
    """A prod ticket awaiting approval, its plan the one above, one approval in, the
    environment's last deployment a commit before."""
    prod = Environment.objects.get(name="prod")
    earlier = TicketFactory(
        environment=prod, author=author, status=TicketStatus.COMPLETED, title="Tune the web tier"
    )
    DeploymentFactory(
        ticket=earlier, environment=prod, finished_at=timezone.now() - dt.timedelta(days=2)
    )
    ticket = TicketFactory(
        environment=prod,
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
        title="Upgrade the database to PostgreSQL 16",
        description="Planned upgrade; the replica is promoted first.",
        risk_assessment={
            "impact": "high",
            "likelihood": "low",
            "data_migration": True,
            "downtime_expected": False,
            "customer_facing": True,
            "tested_in_staging": True,
            "summary": "Engine upgrade with a replica promotion.",
        },
        rollback_plan={
            "steps": "Restore the snapshot taken before the apply.",
            "expected_minutes": 30,
        },
        # Set by hand at medium, so that the rule stays prod's two leads (the scorer would
        # say high, and ask for a third lead); the blast radius is the plan's own.
        risk={
            "level": "medium",
            "score": 4,
            "reasons": ["replaces a database: +3"],
            "blast_radius": blast_radius(review_summary()),
        },
    )
    started = timezone.now() - dt.timedelta(hours=3)
    plan = RunFactory(
        ticket=ticket,
        kind=RunKind.PLAN,
        status=RunStatus.SUCCEEDED,
        plan_sha256=hashlib.sha256(b"review-%d" % ticket.pk).hexdigest(),
        summary=review_summary(),
        has_changes=True,
        requested_by=author,
        log="Terraform will perform the following actions:\n"
        "  # aws_instance.web will be updated in-place\n"
        "Plan: 2 to add, 1 to change, 2 to destroy.\n",
    )
    type(plan).objects.filter(pk=plan.pk).update(
        started_at=started, finished_at=started + dt.timedelta(seconds=42)
    )
    ticket.current_plan = plan
    ticket.save()
    Ticket.objects.filter(pk=ticket.pk).update(created_at=started - dt.timedelta(minutes=5))
    if approver is not None:
        from tests.helpers.tickets import approve

        assert approve(approver, ticket, "Read the replacement: fine.").status_code == 200
    return Ticket.objects.get(pk=ticket.pk)


def realistic_portal(users: dict[str, User], tickets: int = 40) -> None:
    """A history of seeded tickets in every environment and state (services.seeding)."""
    seed_history(tickets, users, random.Random(7))
