"""Rules of stacks (docs/stacks.md): dependencies form no cycle, and a stack applies in an
environment only once every stack it depends on is done deploying there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deployments.policy.errors import InputError, PolicyError


def find_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str] | None:
    """A path ``start → … → start`` through ``graph`` (name → names it depends on), or None."""
    path: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for upstream in sorted(graph.get(node, ())):
            found = visit(upstream)
            if found:
                return found
        path.pop()
        done.add(node)
        return None

    return visit(start)


def check_no_cycle(graph: Mapping[str, Iterable[str]], name: str) -> None:
    """400 naming the cycle when ``name``'s dependencies in ``graph`` lead back to it."""
    cycle = find_cycle(graph, name)
    if cycle:
        raise InputError(
            "depends_on",
            "dependencies may not form a cycle: " + " → ".join(cycle),
        )


@dataclass(frozen=True)
class UpstreamState:
    """Where an upstream stack's latest deployment attempt in one environment stands."""

    stack: str
    environment: str
    ticket_id: int | None = None  # its latest ticket that reached an apply; None: none yet
    ticket_status: str = ""
    monitoring_failed: bool = False


# A ticket whose apply is queued or running, or whose post-apply check has not finished.
_IN_PROGRESS = {"applying"}
_FAILED = {"apply_failed"}


def upstream_problem(state: UpstreamState) -> str:
    """Why an upstream stack's deployment in the environment is not done, or "".

    Done: its latest ticket that reached an apply applied successfully (monitoring,
    completed) and did not fail its monitoring; a stack never deployed there is done
    (nothing to wait for)."""
    if state.ticket_id is None:
        return ""
    where = f"{state.stack} in {state.environment} (ticket #{state.ticket_id})"
    if state.ticket_status in _IN_PROGRESS:
        return f"its dependency {where} is still deploying"
    if state.ticket_status in _FAILED:
        return f"its dependency {where} failed to apply"
    if state.monitoring_failed:
        return f"its dependency {where} failed its monitoring"
    return ""


def check_upstreams_done(stack: str, states: Iterable[UpstreamState]) -> None:
    """409 while a stack this one depends on is mid-deployment in the environment."""
    problems = [problem for state in states if (problem := upstream_problem(state))]
    if problems:
        raise PolicyError(
            f"stack {stack} waits for its dependencies: " + "; ".join(problems),
            PolicyError.STATE,
        )


def missing_stack_roles(required: Iterable[str], approver_roles: Iterable[set[str]]) -> list[str]:
    """The roles a stack requires in an environment that no counted approval holds."""
    held: set[str] = set()
    for roles in approver_roles:
        held |= roles
    return [role for role in required if role not in held]


STACK_MANAGER_ROLES = frozenset({"devops_lead"})


def check_may_manage_stacks(roles: frozenset[str], *, superuser: bool = False) -> None:
    """Declaring stacks (where Terraform runs, what depends on what) is a DevOps Lead's."""
    if superuser or roles & STACK_MANAGER_ROLES:
        return
    raise PolicyError("only a DevOps Lead may declare or change stacks", PolicyError.ACTOR)
