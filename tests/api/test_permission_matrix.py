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
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK, ROLLBACK_OK, RunFactory, TicketFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

ROLES = ["developer", "lead_developer", "tech_lead", "devops_lead", "qa", "operations", "none"]
ENVS = ["dev", "staging", "prod"]
DEV_TEAM = {"developer", "lead_developer", "tech_lead", "devops_lead"}

# Who sees every ticket, run and log of an environment (SPEC §2). Anyone else gets 404,
# except a ticket's own author (see test_visibility.py).
VISIBLE: dict[str, set[str]] = {
    "dev": DEV_TEAM | {"qa", "operations"},
    "staging": DEV_TEAM | {"qa", "operations"},
    "prod": {"tech_lead", "devops_lead", "operations"},
}

ALLOWED: dict[str, dict[str, set[str]]] = {
    "view": VISIBLE,
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
    # Re-planning an approved ticket voids its approvals: only its approvers' roles
    # (the author too, tested elsewhere); dev needs no approval, so nothing is voided.
    "replan": {
        "dev": DEV_TEAM,
        "staging": {"lead_developer", "tech_lead"},
        "prod": {"tech_lead", "devops_lead"},
    },
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
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    user = actor(role)
    client = api_for(user)
    allowed = role in ALLOWED[action][env]
    if action == "file":
        body: dict[str, Any] = {"title": "t", "environment": env, "description": "d"}
        if env == "prod":
            body |= {"risk_assessment": RISK_OK, "rollback_plan": ROLLBACK_OK}
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
        "replan": TicketStatus.APPROVED,
    }[action]
    ticket = prepared(env, status)
    url = f"/api/v1/tickets/{ticket.pk}/"
    if action == "view":
        response = client.get(url)
        assert response.status_code == (200 if allowed else 404)
        return
    payload = {
        "reject": {"reason": "no"},
        "approve": {"comment": "", "plan_sha256": ticket.current_plan.plan_sha256},
        "replan": {"reason": "the AMI changed"},
    }.get(action, {})
    verb = "plan" if action == "replan" else action
    response = client.post(f"{url}{verb}/", payload, format="json")
    if role not in VISIBLE[env]:
        assert response.status_code == 404  # outside the caller's scope: not disclosed
    elif allowed:
        assert response.status_code in (200, 202), response.json()
    elif action == "approve" and env == "dev":
        assert response.status_code == 409
        assert response.json()["detail"] == "dev tickets need no approval"
    else:
        assert response.status_code == 403, response.json()
        assert response.json()["detail"]


READS = ["list", "detail", "run", "log"]
READ_CASES = [(k, e, r) for k in READS for e in ENVS for r in ROLES]


@pytest.mark.parametrize(
    ("read", "env", "role"), READ_CASES, ids=[f"{k}-{e}-{r}" for k, e, r in READ_CASES]
)
def test_read_matrix(read: str, env: str, role: str) -> None:
    """Every role x environment x read path: the ticket list, its detail, its run through the
    API and the page's live log feed each answer 200 (or list it) or 404 (or leave it out)."""
    from django.test import Client

    user = actor(role)
    ticket = prepared(env, TicketStatus.AWAITING_APPROVAL)
    run = ticket.current_plan
    visible = role in VISIBLE[env]
    if read == "list":
        response = api_for(user).get("/api/v1/tickets/", {"limit": 100})
        assert response.status_code == 200
        body = response.json()
        ids = [t["id"] for t in (body["results"] if isinstance(body, dict) else body)]
        assert (ticket.pk in ids) is visible
        return
    if read == "log":
        page = Client()
        page.force_login(user)
        response = page.get(f"/runs/{run.pk}/log/")
    else:
        path = f"/api/v1/tickets/{ticket.pk}/" if read == "detail" else f"/api/v1/runs/{run.pk}/"
        response = api_for(user).get(path)
    assert response.status_code == (200 if visible else 404)
