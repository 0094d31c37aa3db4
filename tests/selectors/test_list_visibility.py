"""Every list endpoint in the schema, walked as every persona: each returns exactly what the
visibility rule allows (policy.may_see_ticket, selectors.environments_visible_to), so B never
sees A's objects where they are scoped. A new list endpoint fails here until its rule is added."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from deployments import policy, selectors, services
from deployments.models import (
    AuditEvent,
    Deployment,
    Environment,
    SpeculativePlan,
    Stack,
    Ticket,
)
from notifications.models import Notification
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory

pytestmark = pytest.mark.django_db

PERSONAS = [
    "author",
    "developer",
    "lead",
    "tech_lead",
    "devops_lead",
    "qa",
    "operations",
    "outsider",
]


def _tickets(user: User) -> set[Any]:
    roles = selectors.user_roles(user)
    return {
        t.pk
        for t in Ticket.objects.select_related("environment")
        if policy.may_see_ticket(t, user.pk, roles, superuser=user.is_superuser)
    }


def _environments(user: User) -> set[Any]:
    return {env.name for env in selectors.environments_visible_to(user)}


def _stacks(user: User) -> set[Any]:
    """Every stack, to whoever sees an environment (the stacks page's graph); none to others."""
    if not selectors.environments_visible_to(user):
        return set()
    return set(Stack.objects.values_list("name", flat=True))


def _deployments(user: User) -> set[Any]:
    roles = selectors.user_roles(user)
    return {
        d.pk
        for d in Deployment.objects.select_related("environment")
        if policy.can_view(d.environment, roles, superuser=user.is_superuser)
    }


def _notifications(user: User) -> set[Any] | None:
    """The notification log: Operations and leads only (None: the list answers 403), rows
    of tickets they may see and rows about no ticket."""
    roles = selectors.user_roles(user)
    if not policy.may_see_notification_log(roles, superuser=user.is_superuser):
        return None
    return {
        n.pk
        for n in Notification.objects.select_related("ticket__environment")
        if n.ticket is None or policy.may_see_ticket(n.ticket, user.pk, roles, superuser=False)
    }


def _viewable_environments(user: User) -> set[Any]:
    """Environments whose every deployment the user sees (policy.can_view): the metrics."""
    return {env.name for env in selectors.environments_viewable_by(user)}


def _audit_events(user: User) -> set[Any] | None:
    """None: refused (403). Readers see events of no ticket and of tickets they see."""
    if not selectors.may_read_audit(user):
        return None
    tickets = _tickets(user)
    return {
        pk
        for pk, ticket_id in AuditEvent.objects.values_list("id", "ticket_id")
        if ticket_id is None or ticket_id in tickets
    }


def _speculative_plans(user: User) -> set[Any]:
    """Plans of the environments whose tickets the user sees, and the user's own."""
    roles = selectors.user_roles(user)
    return {
        p.pk
        for p in SpeculativePlan.objects.select_related("environment")
        if p.requested_by_id == user.pk
        or policy.can_view(p.environment, roles, superuser=user.is_superuser)
    }


# list path → (the rule as a set of keys, or None for 403; the key of a returned item)
RULES: dict[str, tuple[Callable[[User], set[Any] | None], str]] = {
    "/api/v1/tickets/": (_tickets, "id"),
    "/api/v1/environments/": (_environments, "name"),
    "/api/v1/deployments/": (_deployments, "id"),
    "/api/v1/notifications/": (_notifications, "id"),
    "/api/v1/metrics/": (_viewable_environments, "environment"),
    "/api/v1/audit/": (_audit_events, "id"),
    "/api/v1/plans/": (_speculative_plans, "id"),
    "/api/v1/stacks/": (_stacks, "name"),
}
# Answers that list their items under a key rather than as a page.
ITEMS_KEY = {"/api/v1/metrics/": "environments"}
# Not lists of one kind: each checks its scope in its own tests (test_home_queue.py).
NOT_LISTS = {"/api/v1/me/queue/"}


def list_paths(user: User) -> list[str]:
    schema = api_for(user).get("/api/v1/schema/?format=json").json()
    return sorted(
        path
        for path, methods in schema["paths"].items()
        if "get" in methods
        and "{" not in path
        and path != "/api/v1/schema/"
        and path not in NOT_LISTS
    )


def fetch_all(client: Any, path: str) -> list[dict[str, Any]] | None:
    response = client.get(path, {"limit": 200})
    if response.status_code == 403:
        return None
    assert response.status_code == 200, (path, response.json())
    body = response.json()
    if isinstance(body, list):
        return body
    if path in ITEMS_KEY:
        return list(body[ITEMS_KEY[path]])
    if "count" not in body:  # cursor pages (the audit trail): this test stays under one page
        assert body["next"] is None
        return list(body["results"])
    assert body["count"] <= 200 and body["count_exact"]
    return list(body["results"])


def test_every_list_endpoint_shows_each_persona_exactly_what_it_may_see(
    request: pytest.FixtureRequest,
) -> None:
    people = {name: request.getfixturevalue(name) for name in PERSONAS}
    # alice (developer) files in every environment; so does another developer.
    for env in Environment.objects.all():
        for person in ("author", "developer"):
            ticket = TicketFactory(author=people[person], environment=env)
            with transaction.atomic():
                services.audit_record(actor=people[person], action="test.filed", ticket=ticket)
        DeploymentFactory(
            ticket=TicketFactory(author=people["lead"], environment=env, status="completed")
        )
        for person in ("author", "developer", "operations"):
            SpeculativePlan.objects.create(
                environment=env, commit_sha="c" * 40, requested_by=people[person]
            )
    prod_of_alice = Ticket.objects.get(author=people["author"], environment__name="prod")
    for ticket in [*Ticket.objects.all(), None]:
        Notification.objects.create(
            event="ticket.approved",
            channel="email",
            subject="s",
            ticket=ticket,
            status="sent",
            sent_at=prod_of_alice.created_at,
        )

    paths = list_paths(people["author"])
    assert set(paths) >= set(RULES), paths
    unknown = set(paths) - set(RULES)
    assert not unknown, f"add the visibility rule of {unknown} to RULES"
    for name, user in people.items():
        client = api_for(user)
        for path in paths:
            rule, key = RULES[path]
            items = fetch_all(client, path)
            allowed = rule(user)
            if allowed is None or items is None:
                assert allowed is None and items is None, (name, path, "403 for exactly these")
                continue
            seen = [item[key] for item in items]
            assert len(seen) == len(set(seen)), (name, path)
            assert set(seen) == allowed, (name, path)
    # The rule itself scopes prod: another developer never sees alice's prod ticket.
    assert prod_of_alice.pk not in _tickets(people["developer"])
    assert prod_of_alice.pk not in {
        t["id"] for t in fetch_all(api_for(people["developer"]), "/api/v1/tickets/") or []
    }
    assert prod_of_alice.pk in _tickets(people["operations"])
    # A developer sees their own prod plan, never another's.
    assert {
        p.environment.name
        for p in SpeculativePlan.objects.filter(pk__in=_speculative_plans(people["developer"]))
    } == {"dev", "staging", "prod"}
    assert (
        not SpeculativePlan.objects.filter(
            pk__in=_speculative_plans(people["developer"]),
            environment__name="prod",
        )
        .exclude(requested_by=people["developer"])
        .exists()
    )
    assert _tickets(people["outsider"]) == set()
