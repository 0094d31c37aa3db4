"""Demo accounts (one per role) and, optionally, tickets of realistic history.

``--tickets N`` makes sure N seeded tickets exist (deployments/seeding.py): re-running with
the same N adds nothing, a larger N adds the difference. 500 look like a day of activity,
100,000 like two years (the benchmark's database).
"""

import random
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.models import Environment, Stack
from deployments.policy import data_resources
from deployments.services.environments import environment_save
from deployments.services.seeding import seed_history
from deployments.services.stacks import StackInput, stack_save

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


class Command(BaseCommand):
    help = "Create the demo accounts (local mode only) and optionally N tickets of history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=0, help="Tickets of history to create.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed for the history.")
        parser.add_argument(
            "--stacks",
            action="store_true",
            help="Declare the sample's network and application stacks (sample_stack/stacks).",
        )
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
        self._sample_stack_data_resources()
        if options["stacks"]:
            self._sample_stacks()
        if options["tickets"] > 0:
            self._history(options["tickets"], users, random.Random(options["seed"]))

    def _sample_stacks(self) -> None:
        """The two layers of sample_stack/stacks in the portal's repository, the application
        reading the network's outputs and with a policy folder of its own (docs/stacks.md);
        the default stack stays."""
        Stack.default()
        pattern = "environments/<env>/terraform.tfvars"
        for name, description, depends_on, policy_dir in (
            ("network", "The network layer: VPC and subnets.", (), ""),
            (
                "app",
                "The application layer, on the network's subnets.",
                ("network",),
                "stacks/app/policies",
            ),
        ):
            if Stack.objects.filter(name=name).exists():
                continue
            stack_save(
                actor="seed_demo",
                data=StackInput(
                    name=name,
                    description=description,
                    root_dir=f"stacks/{name}",
                    var_file_pattern=pattern,
                    policy_dir=policy_dir,
                    require_lock_file=True,
                    depends_on=depends_on,
                ),
            )
        self.stdout.write(
            "stacks: default, network, app (app depends on network); app's own policies: "
            "stacks/app/policies"
        )

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

    def _sample_stack_data_resources(self) -> None:
        """The sample stack's stand-ins for data-holding resources, in every environment
        that has no list of its own (deployments.policy.data_resources.SAMPLE_STACK_EXTRA)."""
        for env in Environment.objects.all():
            if env.data_resource_types:
                continue
            env.data_resource_types = data_resources.SAMPLE_STACK_EXTRA
            environment_save(actor="seed_demo", env=env, changed=["data_resource_types"])

    def _history(self, count: int, users: dict[str, Any], rng: random.Random) -> None:
        created = seed_history(count, users, rng, progress=self.stdout.write)
        if created:
            self.stdout.write(f"{created} tickets of history created")
        else:
            self.stdout.write(f"{count} seeded tickets already present: nothing to add")
