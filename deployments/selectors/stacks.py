"""Reads of stacks (docs/stacks.md): the list, one stack with its last deployment per
environment, the dependency graph, and where each upstream stack stands in an environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployments import policy
from deployments.choices import RunKind
from deployments.models import Deployment, Environment, Stack, TerraformRun
from deployments.selectors.access import environments_visible_to, visible_ticket_ids


def stacks_list(user: Any = None) -> list[Stack]:
    """Every stack; with ``user``, none unless they see an environment (like the portal's
    other lists, someone without a role sees nothing)."""
    if user is not None and not environments_visible_to(user):
        return []
    return list(Stack.objects.prefetch_related("depends_on", "dependents").order_by("name"))


def stack_names() -> list[str]:
    """Every stack's name, in order (a filter's choices)."""
    return list(Stack.objects.order_by("name").values_list("name", flat=True))


def stack_get(name: str, user: Any = None) -> Stack | None:
    if user is not None and not environments_visible_to(user):
        return None
    return Stack.objects.prefetch_related("depends_on", "dependents").filter(name=name).first()


def upstream_states(stack: Stack, environment: Environment) -> list[policy.stacks.UpstreamState]:
    """For each stack ``stack`` depends on: its latest ticket in ``environment`` that reached
    an apply, and whether that deployment failed its monitoring."""
    states = []
    for upstream in stack.depends_on.all().order_by("name"):
        apply = (
            TerraformRun.objects.filter(stack=upstream, environment=environment, kind=RunKind.APPLY)
            .select_related("ticket")
            .order_by("-pk")
            .first()
        )
        failed = False
        if apply is not None:
            failed = Deployment.objects.filter(
                run=apply, monitoring_failed_at__isnull=False
            ).exists()
        states.append(
            policy.stacks.UpstreamState(
                stack=upstream.name,
                environment=environment.name,
                ticket_id=apply.ticket_id if apply else None,
                ticket_status=apply.ticket.status if apply else "",
                monitoring_failed=failed,
            )
        )
    return states


@dataclass(frozen=True)
class StackEnvironment:
    """One stack in one environment: its last deployment (None: never deployed there)."""

    environment: Environment
    last: Deployment | None


@dataclass(frozen=True)
class StackRow:
    stack: Stack
    environments: list[StackEnvironment] = field(default_factory=list)

    @property
    def depends_on(self) -> list[str]:
        return sorted(s.name for s in self.stack.depends_on.all())

    @property
    def dependents(self) -> list[str]:
        return sorted(s.name for s in self.stack.dependents.all())


def stack_rows(user: Any, stacks: list[Stack] | None = None) -> list[StackRow]:
    """Each stack with its last deployment in each environment the user may see."""
    stacks = stacks if stacks is not None else stacks_list()
    environments = list(environments_visible_to(user))
    last: dict[tuple[int, int], Deployment] = {}
    for stack in stacks:  # one query per stack and environment: a handful of each
        for env in environments:
            found = (
                Deployment.objects.filter(stack=stack, environment=env)
                .select_related("ticket")
                .order_by("-finished_at", "-pk")
                .first()
            )
            if found is not None:
                last[(stack.pk, env.pk)] = found
    return [
        StackRow(
            stack=stack,
            environments=[
                StackEnvironment(environment=env, last=last.get((stack.pk, env.pk)))
                for env in environments
            ],
        )
        for stack in stacks
    ]


def stack_layers(stacks: list[Stack]) -> list[list[Stack]]:
    """The stacks in deployment order: each layer depends only on earlier ones."""
    remaining = {s.name: s for s in stacks}
    placed: set[str] = set()
    layers: list[list[Stack]] = []
    while remaining:
        layer = [
            s
            for s in remaining.values()
            if {d.name for d in s.depends_on.all()} & set(remaining) <= placed
            or not ({d.name for d in s.depends_on.all()} & set(remaining))
        ]
        if not layer:  # a cycle (refused when declared; tolerated here)
            layer = list(remaining.values())
        layers.append(sorted(layer, key=lambda s: s.name))
        for s in layer:
            placed.add(s.name)
            remaining.pop(s.name)
    return layers


@dataclass(frozen=True)
class TriggeredBy:
    """The upstream deployment whose success filed this ticket (a run trigger); the
    upstream ticket is named only to who may see it."""

    deployment_id: int
    stack: str
    ticket_id: int | None


def triggered_by_of(ticket: Any, user: Any) -> TriggeredBy | None:
    if not ticket.triggered_by_id:
        return None
    deployment = (
        Deployment.objects.select_related("stack")
        .only("pk", "ticket_id", "stack__name")
        .get(pk=ticket.triggered_by_id)
    )
    shown = deployment.ticket_id in visible_ticket_ids(user, [deployment.ticket_id])
    return TriggeredBy(
        deployment_id=deployment.pk,
        stack=deployment.stack.name,
        ticket_id=deployment.ticket_id if shown else None,
    )
