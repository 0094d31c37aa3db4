"""Every kind of change the portal makes leaves an audit event, written by the service
in the same transaction, with who did it and on which ticket: driven here through the
API and services as people do it, then the whole chain verifies.

Runs of Terraform (run.start, run.finish, deployment.record) are driven by the worker:
test_terraform_flow checks their events with a real Terraform. Checklist sign-offs
(checklist.*) arrive with the checklist feature and call audit_record the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client

from deployments import services
from deployments.models import AuditEvent, Environment
from deployments.services import accounts, apikeys, environments, schedules
from tests.helpers.api import api_for
from tests.helpers.evidence import staging_ticket, upload
from tests.helpers.tickets import IN_WINDOW, approve, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


def _file(author: User) -> Any:
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "Scale app servers", "environment": "dev"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


@time_machine.travel(IN_WINDOW, tick=False)
def test_every_kind_of_change_is_audited(
    request: pytest.FixtureRequest,
    author: User,
    lead: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    qa: User,
    head_sha: str,
    evidence_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    monkeypatch.setattr("deployments.tasks.run_execute.apply_async", lambda *a, **k: None)
    # (action, actor, ticket or None, a check of data): what must be in the trail.
    expected: list[tuple[str, User | str, int | None, Any]] = []

    # Filing: the ticket, its move to planning and the queued plan.
    filed = _file(author)
    expected += [
        ("ticket.create", author, filed, lambda d: d["environment"] == "dev"),
        ("ticket.transition", author, filed, lambda d: d["to"] == "planning"),
        ("run.queue", author, filed, lambda d: d["kind"] == "plan"),
    ]

    # Approval, then deploy (prod: two leads, then operations inside the window).
    prod = awaiting("prod", author)
    assert approve(tech_lead, prod).status_code == 200
    assert approve(devops_lead, prod).status_code == 200
    deployed = api_for(operations).post(f"/api/v1/tickets/{prod.pk}/deploy/")
    assert deployed.status_code == 202, deployed.json()
    expected += [
        ("approval.grant", tech_lead, prod.pk, lambda d: d["role"] == "tech_lead"),
        ("approval.grant", devops_lead, prod.pk, lambda d: d["role"] == "devops_lead"),
        ("ticket.transition", devops_lead, prod.pk, lambda d: d["to"] == "approved"),
        ("ticket.transition", operations, prod.pk, lambda d: d["to"] == "applying"),
    ]

    # Rejection.
    rejected = awaiting("staging", author)
    response = api_for(lead).post(
        f"/api/v1/tickets/{rejected.pk}/reject/", {"reason": "no rollback"}, format="json"
    )
    assert response.status_code == 200, response.json()
    expected.append(
        ("ticket.transition", lead, rejected.pk, lambda d: d["to"] == "rejected" and d["rejection"])
    )

    # Evidence: an upload and QA's sign-off.
    staged = staging_ticket(author)
    assert upload(qa, staged, passed=True).status_code == 201
    expected.append(("evidence.upload", qa, staged.pk, lambda d: d["kind"] == "smoke_tests"))

    # Policy and window edits, a freeze, a role change, a token.
    env = Environment.objects.get(name="staging")
    env.window_timezone = "Europe/Paris" if env.window_timezone != "Europe/Paris" else "UTC"
    environments.environment_save(actor=devops_lead, env=env, changed=["window_timezone"])
    expected.append(
        ("environment.update", devops_lead, None, lambda d: "window_timezone" in d["changes"])
    )
    start = dt.datetime(2026, 12, 24, tzinfo=dt.UTC)
    schedules.freeze_declare(
        actor=devops_lead,
        environment=env,
        starts_at=start,
        ends_at=start + dt.timedelta(days=2),
        reason="holidays",
    )
    expected.append(("freeze.declare", devops_lead, None, lambda d: True))
    qa.groups.add(Group.objects.get(name="operations"))
    accounts.roles_change_record(actor=devops_lead, user=qa, added=["operations"], removed=[])
    expected.append(("account.roles_change", devops_lead, None, lambda d: d["user"] == "quinn"))
    before = {"is_active": True, "is_staff": qa.is_staff, "is_superuser": qa.is_superuser}
    qa.is_staff = True
    qa.save(update_fields=["is_staff"])
    accounts.privileges_change_record(actor=devops_lead, user=qa, before=before)
    expected.append(
        ("account.privileges_change", devops_lead, None, lambda d: d["granted"] == ["is_staff"])
    )
    apikeys.api_key_create(actor=author, user=author, name="ci")
    expected.append(("account.api_key_create", author, None, lambda d: True))

    # Sign-in, and refusals: an API 403 and a page that answers "you may not" in a message.
    client = Client()
    assert client.login(username=author.username, password="pw")  # factory password
    expected.append(("account.signin", author, None, lambda d: True))
    assert api_for(author).get("/api/v1/audit/").status_code == 403
    expected.append(("access.refused", author, None, lambda d: d["path"] == "/api/v1/audit/"))
    own = awaiting("staging", author)
    client.post(f"/tickets/{own.pk}/reject/", {"reason": "mine"})  # a message, not a 403
    expected.append(
        (
            "access.refused",
            author,
            own.pk,  # a refusal about a ticket records it (the audit's visibility applies)
            lambda d: (
                d["path"] == f"/tickets/{own.pk}/reject/"
                and d["reason"] == "you authored this ticket; cancel it instead of rejecting it"
            ),
        )
    )

    events = list(AuditEvent.objects.order_by("id"))
    missing = []
    for action, actor, ticket_id, check in expected:
        name = actor if isinstance(actor, str) else actor.get_username()
        if not any(
            e.action == action
            and e.actor_name == name
            and e.ticket_id == ticket_id
            and check(e.data)
            for e in events
        ):
            missing.append((action, name, ticket_id))
    assert missing == [], [(e.action, e.actor_name, e.ticket_id, e.data) for e in events]
    ok, message = services.audit_verify()
    assert ok, message
