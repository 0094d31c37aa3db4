"""Every action x role x environment, through the API, against a table written by hand
from the process document (not derived from the code under test)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import Approval, Environment

from .conftest import api_for
from .factories import RunFactory, TicketFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["developer", "lead_developer", "tech_lead", "devops_lead", "qa", "operations", "none"]
ENVS = ["dev", "staging", "prod"]
DEV_TEAM = {"developer", "lead_developer", "tech_lead", "devops_lead"}

ALLOWED: dict[str, dict[str, set[str]]] = {
    "view": {env: set(ROLES) - {"none"} for env in ENVS},
    "file": {"dev": DEV_TEAM, "staging": DEV_TEAM | {"qa"}, "prod": DEV_TEAM | {"operations"}},
    "approve": {
        "dev": set(),
        "staging": {"lead_developer", "tech_lead"},
        "prod": {"tech_lead", "devops_lead"},
    },
    "reject": {
        "dev": set(),
        "staging": {"lead_developer", "tech_lead"},
        "prod": {"tech_lead", "devops_lead"},
    },
    "deploy": {"dev": DEV_TEAM, "staging": DEV_TEAM | {"qa"}, "prod": {"operations"}},
    "cancel": {env: {"lead_developer", "tech_lead", "devops_lead"} for env in ENVS},
    "plan": {"dev": DEV_TEAM, "staging": DEV_TEAM | {"qa"}, "prod": DEV_TEAM | {"operations"}},
}
CASES = [(a, e, r) for a in ALLOWED for e in ENVS for r in ROLES]


def actor(role: str) -> User:
    user = UserFactory(username=f"actor-{role}")
    if role != "none":
        user.groups.set([Group.objects.get(name=role)])
    return user


def prepared(env: str, status: str) -> Any:
    author = UserFactory(username="ticket-author")
    author.groups.set([Group.objects.get(name="developer")])
    ticket = TicketFactory(
        environment=Environment.objects.get(name=env), author=author, status=status
    )
    plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"p").hexdigest())
    ticket.current_plan = plan
    ticket.save()
    if status == TicketStatus.APPROVED:
        approvers = {"dev": [], "staging": ["lead_developer"], "prod": ["tech_lead", "devops_lead"]}
        for role in approvers[env]:
            approver = UserFactory(username=f"approver-{role}")
            approver.groups.set([Group.objects.get(name=role)])  # still holds it at deploy
            Approval.objects.create(
                ticket=ticket,
                approver=approver,
                role=role,
                held_roles=[role],
                plan_run=plan,
                plan_sha256=plan.plan_sha256,
            )
    return ticket


@pytest.mark.parametrize(
    ("action", "env", "role"), CASES, ids=[f"{a}-{e}-{r}" for a, e, r in CASES]
)
@time_machine.travel("2026-11-24 07:30:00+00:00", tick=False)  # inside the prod window
def test_permission_matrix(
    action: str, env: str, role: str, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs, "run_dispatch", lambda run_id: None)
    user = actor(role)
    client = api_for(user)
    allowed = role in ALLOWED[action][env]
    if action == "file":
        body: dict[str, Any] = {"title": "t", "environment": env, "description": "d"}
        if env == "prod":
            body |= {"risk_assessment": {"notes": "low"}, "rollback_plan": {"notes": "revert"}}
        response = client.post("/api/v1/tickets/", body, format="json")
        assert response.status_code == (201 if allowed else 403), response.json()
        return
    status = {
        "view": TicketStatus.AWAITING_APPROVAL,
        "approve": TicketStatus.AWAITING_APPROVAL,
        "reject": TicketStatus.AWAITING_APPROVAL,
        "deploy": TicketStatus.APPROVED,
        "cancel": TicketStatus.AWAITING_APPROVAL,
        "plan": TicketStatus.AWAITING_APPROVAL,
    }[action]
    ticket = prepared(env, status)
    url = f"/api/v1/tickets/{ticket.pk}/"
    if action == "view":
        response = client.get(url)
        assert response.status_code == (200 if allowed else 404)
        return
    payload = {"reject": {"reason": "no"}, "approve": {"comment": ""}}.get(action, {})
    response = client.post(f"{url}{action}/", payload, format="json")
    if role == "none":
        assert response.status_code == 404  # outside the caller's scope: not disclosed
    elif allowed:
        assert response.status_code in (200, 202), response.json()
    elif action == "approve" and env == "dev":
        assert response.status_code == 409
        assert response.json()["detail"] == "dev tickets need no approval"
    else:
        assert response.status_code == 403, response.json()
        assert response.json()["detail"]
