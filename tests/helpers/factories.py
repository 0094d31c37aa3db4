"""factory_boy factories for the domain."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Deployment, Environment, TerraformRun, Ticket


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


def _sha(n: int) -> str:
    return hashlib.sha1(f"commit-{n}".encode()).hexdigest()


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket written directly (no plan started): for selector and policy tests."""

    class Meta:
        model = Ticket

    title = factory.Sequence(lambda n: f"Change {n}")
    environment = factory.LazyFunction(lambda: Environment.objects.get(name="dev"))
    commit_sha = factory.Sequence(_sha)
    author = factory.SubFactory(UserFactory)
    status = TicketStatus.AWAITING_APPROVAL


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TerraformRun

    ticket = factory.SubFactory(TicketFactory)
    environment = factory.LazyAttribute(lambda r: r.ticket.environment)
    kind = RunKind.PLAN
    status = RunStatus.SUCCEEDED
    commit_sha = factory.LazyAttribute(lambda r: r.ticket.commit_sha)
    workspace = factory.LazyAttribute(lambda r: r.environment.workspace)
    var_file = factory.LazyAttribute(lambda r: r.environment.var_file)


class DeploymentFactory(factory.django.DjangoModelFactory):
    """A deployment record with its apply run (succeeded unless told otherwise)."""

    class Meta:
        model = Deployment

    ticket = factory.SubFactory(TicketFactory, status=TicketStatus.COMPLETED)
    environment = factory.LazyAttribute(lambda d: d.ticket.environment)
    run = factory.LazyAttribute(
        lambda d: RunFactory(
            ticket=d.ticket,
            kind=RunKind.APPLY,
            status=d.outcome,
            plan=RunFactory(ticket=d.ticket),
            finished_at=d.finished_at,
        )
    )
    change_type = factory.LazyAttribute(lambda d: d.ticket.change_type)
    commit_sha = factory.LazyAttribute(lambda d: d.ticket.commit_sha)
    var_file = factory.LazyAttribute(lambda d: d.environment.var_file)
    outcome = "succeeded"
    finished_at = factory.LazyFunction(timezone.now)


# A valid prod questionnaire and rollback plan (deployments.policy.risk), low risk.
RISK_OK: dict[str, object] = {
    "impact": "low",
    "likelihood": "low",
    "summary": "additive change; nothing existing is modified",
    "tested_in_staging": True,
}
ROLLBACK_OK: dict[str, object] = {
    "steps": "re-apply the previous commit",
    "expected_minutes": 10,
    "data_considerations": "",
}
