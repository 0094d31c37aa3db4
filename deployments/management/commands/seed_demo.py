"""Demo accounts (one per role) and, optionally, tickets of realistic history."""

import datetime as dt
import hashlib
import random
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from deployments import risk
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Approval, Deployment, Environment, TerraformRun, Ticket
from deployments.services import audit_record

DEMO_USERS: list[tuple[str, list[str], bool]] = [
    ("dev1", ["developer"], False),
    ("dev2", ["developer"], False),
    ("lead1", ["lead_developer"], False),
    ("techlead1", ["tech_lead"], False),
    ("devopslead1", ["devops_lead"], False),
    ("qa1", ["qa"], False),
    ("ops1", ["operations"], False),
    ("admin", [], True),
]

TITLES = [
    "Raise app server count for the autumn campaign",
    "Enable versioning on the media bucket",
    "Tighten CPU alarm threshold",
    "Resize cache nodes",
    "Increase queue visibility timeout",
    "Give the processing function more memory",
    "Add a private subnet in a new AZ",
    "Rotate database storage class",
]


_DEMO_ROLLBACK = risk.clean_rollback_plan(
    {
        "steps": "File a ticket for the last known good commit and deploy it.",
        "expected_minutes": 20,
        "data_considerations": "No schema change; nothing to restore.",
    }
)


def _demo_risk(rng: random.Random) -> dict[str, Any]:
    """A valid risk questionnaire (deployments.risk), varied so the history shows levels."""
    return risk.clean_risk_assessment(
        {
            "impact": rng.choice(risk.LEVELS),
            "likelihood": rng.choice(risk.LEVELS[:2]),
            "summary": "Seeded demo change: additive, reviewed in staging.",
            "customer_facing": rng.random() < 0.5,
            "tested_in_staging": True,
        }
    )


class Command(BaseCommand):
    help = "Create the demo accounts (local mode only) and optionally N tickets of history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=0, help="Tickets of history to create.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed for the history.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Allow demo accounts outside the embedded local mode.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED and not options["force"]:
            raise CommandError(
                "demo accounts exist only in the local mode (DATABASE_URL is set); "
                "use --force for a throwaway database"
            )
        users = self._accounts()
        if options["tickets"] > 0:
            self._history(options["tickets"], users, random.Random(options["seed"]))

    def _accounts(self) -> dict[str, Any]:
        User = get_user_model()
        password = settings.DEMO_PASSWORD
        users: dict[str, Any] = {}
        for username, roles, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = user.is_superuser = superuser
            user.save()
            user.groups.set(Group.objects.filter(name__in=roles))
            users[username] = user
        self.stdout.write(
            "Demo accounts (password: %s):" % ("DEMO_PASSWORD" if password != "demo" else "demo")
        )
        for username, roles, superuser in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {'superuser' if superuser else ', '.join(roles)}")
        return users

    def _history(self, count: int, users: dict[str, Any], rng: random.Random) -> None:
        envs = list(Environment.objects.all())
        now = timezone.now()
        authors = [users["dev1"], users["dev2"], users["lead1"]]
        for index in range(count):
            env = rng.choice(envs)
            filed = now - dt.timedelta(days=rng.uniform(0, 90))
            failed = rng.random() < 0.12
            sha = hashlib.sha1(f"demo-{index}".encode()).hexdigest()  # noqa: S324 - a fake commit id
            with transaction.atomic():
                ticket = Ticket.objects.create(
                    title=rng.choice(TITLES),
                    description="Seeded demo history.",
                    environment=env,
                    commit_sha=sha,
                    author=rng.choice(authors),
                    source="seed",
                    status=TicketStatus.APPLY_FAILED if failed else TicketStatus.COMPLETED,
                    # A questionnaire and rollback plan as the API would take them.
                    risk_assessment=_demo_risk(rng) if env.requires_change_details else {},
                    rollback_plan=_DEMO_ROLLBACK if env.requires_change_details else {},
                )
                add = rng.randint(0, 6)
                plan = TerraformRun.objects.create(
                    ticket=ticket,
                    environment=env,
                    kind=RunKind.PLAN,
                    status=RunStatus.SUCCEEDED,
                    commit_sha=sha,
                    workspace=env.workspace,
                    var_file=env.var_file,
                    exit_code=0,
                    plan_sha256=hashlib.sha256(sha.encode()).hexdigest(),
                    summary={
                        "add": add,
                        "change": rng.randint(0, 3),
                        "destroy": 0,
                        "resources": [],
                    },
                    started_at=filed,
                    finished_at=filed + dt.timedelta(seconds=rng.randint(5, 40)),
                    log="(seeded history: no log)\n",
                )
                # Approvals as the environment's rule requires, from people other than the author.
                approvers = {
                    "staging": [("lead1", "lead_developer")],
                    "prod": [("techlead1", "tech_lead"), ("devopslead1", "devops_lead")],
                }
                applied = filed + dt.timedelta(hours=rng.uniform(0.2, 30))
                assert plan.finished_at is not None
                for username, role in approvers.get(env.name, []):
                    approval = Approval.objects.create(
                        ticket=ticket,
                        approver=users[username],
                        role=role,
                        held_roles=[role],
                        plan_run=plan,
                        plan_sha256=plan.plan_sha256,
                        comment="seeded",
                    )
                    # Given between the plan finishing and the apply (the metrics' waits).
                    waited = (applied - plan.finished_at) * rng.uniform(0.2, 0.95)
                    Approval.objects.filter(pk=approval.pk).update(
                        created_at=plan.finished_at + waited, waiting_since=plan.finished_at
                    )
                apply_run = TerraformRun.objects.create(
                    ticket=ticket,
                    environment=env,
                    kind=RunKind.APPLY,
                    plan=plan,
                    status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                    commit_sha=sha,
                    workspace=env.workspace,
                    var_file=env.var_file,
                    exit_code=1 if failed else 0,
                    started_at=applied,
                    finished_at=applied + dt.timedelta(seconds=rng.randint(10, 300)),
                    log="(seeded history: no log)\n",
                )
                # The deployment record the worker writes; a few failed their monitoring.
                assert apply_run.finished_at is not None
                monitoring_failed = not failed and env.monitoring_minutes and rng.random() < 0.05
                Deployment.objects.create(
                    environment=env,
                    ticket=ticket,
                    run=apply_run,
                    change_type=ticket.change_type,
                    commit_sha=sha,
                    var_file=env.var_file,
                    plan_sha256=plan.plan_sha256,
                    deployed_by=users["ops1"] if env.name == "prod" else ticket.author,
                    outcome="failed" if failed else "succeeded",
                    started_at=applied,
                    finished_at=apply_run.finished_at,
                    monitoring_failed_at=(
                        apply_run.finished_at + dt.timedelta(minutes=20)
                        if monitoring_failed
                        else None
                    ),
                    monitoring_failure="seeded: an alarm fired" if monitoring_failed else "",
                )
                Ticket.objects.filter(pk=ticket.pk).update(
                    risk={**risk.assess(ticket.risk_assessment, plan.summary), "plan_run": plan.pk},
                    created_at=filed,
                    current_plan=plan,
                    deployed_at=None if failed else applied,
                    completed_at=None if failed else applied + dt.timedelta(hours=1),
                )
                audit_record(
                    actor=ticket.author,
                    action="ticket.create",
                    ticket=ticket,
                    data={"environment": env.name, "commit_sha": sha, "source": "seed"},
                )
                # The rest of the seeded story, so the audit page shows every step of it
                # (recorded now: the chain's times are when events were written).
                for username, role in approvers.get(env.name, []):
                    audit_record(
                        actor=users[username],
                        action="approval.grant",
                        ticket=ticket,
                        data={"role": role, "plan_sha256": plan.plan_sha256, "source": "seed"},
                    )
                audit_record(
                    actor="worker",
                    action="run.finish",
                    ticket=ticket,
                    data={"kind": "apply", "status": "failed" if failed else "succeeded"},
                )
                audit_record(
                    actor="worker",
                    action="ticket.transition",
                    ticket=ticket,
                    data={
                        "from": TicketStatus.APPLYING.value,
                        "to": TicketStatus.APPLY_FAILED.value
                        if failed
                        else TicketStatus.COMPLETED.value,
                        "reason": "seeded history",
                    },
                )
        self.stdout.write(f"{count} tickets of history created")
