"""Run triggers between stacks (docs/stacks.md): when a stack's apply succeeds in an
environment, each stack that depends on it gets a plan ticket there, marked as triggered by
that deployment. (That the dependent's apply waits for the upstream deployment to be done
is services.runs.start's, asked wherever an apply is started.)"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from deployments import policy
from deployments.models import Deployment, DeploymentOutcome, Stack, TerraformRun, Ticket
from deployments.selectors import user_roles
from deployments.services._base import InputError
from deployments.services.audit import audit_record

log = logging.getLogger(__name__)


def dependents_after_apply(ticket: Ticket, run: TerraformRun) -> None:
    """A step of lifecycle.after_apply: once the outcome has committed, plan each stack that
    depends on this ticket's stack in its environment."""
    if not Stack.objects.filter(depends_on=ticket.stack_id).exists():
        return
    deployment_id = Deployment.objects.filter(run=run).values_list("pk", flat=True).first()
    if deployment_id is None:
        return
    transaction.on_commit(lambda: dependents_plan(deployment_id=deployment_id))


def _author(upstream: Ticket) -> Any:
    """Who files the dependents' tickets: the upstream ticket's author when they may file
    in the environment, else the portal's service account."""
    from deployments.services.webhooks import service_account  # webhooks import tickets

    author = upstream.author
    try:
        policy.check_may_file(
            upstream.environment, user_roles(author), superuser=bool(author.is_superuser)
        )
    except policy.PolicyError:
        return service_account()
    return author if author.is_active else service_account()


def dependents_plan(*, deployment_id: int) -> list[int]:
    """File a plan ticket for each stack that depends on the deployment's stack, in its
    environment (once per deployment, whoever asks again); the ids of the tickets filed.
    A dependent that cannot be filed is audited with the reason, never raised."""
    from deployments.services.tickets import TicketInput, ticket_create  # tickets import runs

    deployment = Deployment.objects.select_related(
        "ticket", "ticket__author", "environment", "stack"
    ).get(pk=deployment_id)
    if deployment.outcome != DeploymentOutcome.SUCCEEDED:
        return []
    upstream = deployment.ticket
    env = deployment.environment
    filed: list[int] = []
    for dependent in Stack.objects.filter(depends_on=deployment.stack).order_by("name"):
        if Ticket.objects.filter(stack=dependent, triggered_by=deployment).exists():
            continue
        try:
            ticket = ticket_create(
                actor=_author(upstream),
                data=TicketInput(
                    title=(
                        f"Plan {dependent.name} after {deployment.stack.name} "
                        f"deployed #{upstream.pk} to {env.name}"
                    )[:200],
                    environment=env.name,
                    stack=dependent.name,
                    description=(
                        f"Filed by a run trigger: {dependent.name} depends on "
                        f"{deployment.stack.name}, whose ticket #{upstream.pk} deployed commit "
                        f"{deployment.commit_sha[:12]} to {env.name} (deployment "
                        f"#{deployment.pk}). Its apply waits until that deployment is done."
                    ),
                    triggered_by=deployment.pk,
                ),
                source="trigger",
            )
        except (InputError, policy.PolicyError) as exc:
            message = getattr(exc, "message", str(exc))
            log.warning("run trigger of %s in %s: %s", dependent.name, env.name, message)
            with transaction.atomic():
                audit_record(
                    actor="run trigger",
                    action="stack.trigger_failed",
                    ticket=upstream,
                    data={
                        "stack": dependent.name,
                        "upstream": deployment.stack.name,
                        "deployment": deployment.pk,
                        "environment": env.name,
                        "reason": message,
                    },
                )
            continue
        with transaction.atomic():
            audit_record(
                actor="run trigger",
                action="stack.trigger",
                ticket=ticket,
                data={
                    "stack": dependent.name,
                    "upstream": deployment.stack.name,
                    "upstream_ticket": upstream.pk,
                    "deployment": deployment.pk,
                    "environment": env.name,
                },
            )
        filed.append(ticket.pk)
    return filed
