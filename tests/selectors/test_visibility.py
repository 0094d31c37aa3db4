"""SPEC §2: prod tickets, runs and logs are visible to operations, the prod approver roles
and the ticket's own author; anyone else gets 404. Dev and staging keep their teams."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import policy, selectors, services
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import RISK_OK, ROLLBACK_OK, RunFactory, TicketFactory
from tests.helpers.users import persona

pytestmark = pytest.mark.django_db


def filed(env: str, author: User) -> Ticket:
    ticket = TicketFactory(environment=Environment.objects.get(name=env), author=author)
    ticket.current_plan = RunFactory(ticket=ticket, plan_sha256=hashlib.sha256(b"x").hexdigest())
    ticket.save()
    return ticket


def page_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["developer", "lead", "qa", "outsider"])
def test_other_developers_and_qa_get_404_for_prod(
    request: pytest.FixtureRequest, author: User, who: str
) -> None:
    ticket = filed("prod", author)
    run = ticket.current_plan
    user = request.getfixturevalue(who)
    api = api_for(user)
    assert api.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert api.get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert ticket.pk not in [t["id"] for t in api.get("/api/v1/tickets/").json()["results"]]
    assert api.get("/api/v1/tickets/", {"environment": "prod"}).json()["results"] == []
    page = page_for(user)
    assert page.get(f"/tickets/{ticket.pk}/").status_code == 404
    assert page.get(f"/runs/{run.pk}/log/").status_code == 404
    assert f"/tickets/{ticket.pk}/" not in page.get("/tickets/").content.decode()
    # Nor can they act on it: every verb is 404 before any rule is asked.
    for verb in ("plan", "approve", "reject", "cancel", "deploy"):
        assert api.post(f"/api/v1/tickets/{ticket.pk}/{verb}/").status_code == 404, verb
        assert page.post(f"/tickets/{ticket.pk}/{verb}/").status_code == 404, verb


@pytest.mark.parametrize("who", ["operations", "tech_lead", "devops_lead"])
def test_operations_and_prod_approvers_see_prod(
    request: pytest.FixtureRequest, author: User, who: str
) -> None:
    ticket = filed("prod", author)
    user = request.getfixturevalue(who)
    assert api_for(user).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
    assert api_for(user).get(f"/api/v1/runs/{ticket.current_plan_id}/").status_code == 200
    assert page_for(user).get(f"/runs/{ticket.current_plan_id}/log/").status_code == 200


def test_a_developer_files_a_prod_ticket_and_sees_only_their_own(
    author: User, developer: User, settings: Any, monkeypatch: Any
) -> None:
    theirs = filed("prod", author)
    mine = filed("prod", developer)
    api = api_for(developer)
    listed = [
        t["id"] for t in api.get("/api/v1/tickets/", {"environment": "prod"}).json()["results"]
    ]
    assert listed == [mine.pk]
    assert api.get(f"/api/v1/tickets/{mine.pk}/").status_code == 200
    assert api.get(f"/api/v1/runs/{mine.current_plan_id}/").status_code == 200
    assert page_for(developer).get(f"/runs/{mine.current_plan_id}/log/").status_code == 200
    assert page_for(developer).get(f"/tickets/{mine.pk}/").status_code == 200
    assert api.get(f"/api/v1/tickets/{theirs.pk}/").status_code == 404
    # They still may file one: prod's policy is shown to them, and the form offers prod.
    names = [e["name"] for e in api.get("/api/v1/environments/").json()]
    assert "prod" in names
    assert 'value="prod"' in page_for(developer).get("/tickets/new/").content.decode()


def test_a_developer_files_prod_through_the_api_and_then_reads_it(
    developer: User, infra_repo: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    response = api_for(developer).post(
        "/api/v1/tickets/",
        {
            "title": "t",
            "environment": "prod",
            "description": "d",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()  # the 201 body is their own ticket
    assert api_for(developer).get(response.json()["url"]).status_code == 200


@pytest.mark.parametrize("env", ["dev", "staging"])
@pytest.mark.parametrize("who", ["developer", "lead", "qa", "operations"])
def test_dev_and_staging_keep_their_teams(
    request: pytest.FixtureRequest, author: User, env: str, who: str
) -> None:
    ticket = filed(env, author)
    user = request.getfixturevalue(who)
    assert api_for(user).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
    assert page_for(user).get(f"/runs/{ticket.current_plan_id}/log/").status_code == 200


def test_an_approver_role_always_sees_what_it_approves() -> None:
    """Even if an administrator leaves them out of view_groups, approvers are not blind."""
    env = Environment.objects.get(name="prod")
    env.view_groups = ["operations"]
    assert policy.can_view(env, {"tech_lead"})
    assert policy.can_view(env, {"devops_lead"})
    assert not policy.can_view(env, {"developer", "lead_developer", "qa"})


def test_the_query_is_the_rule() -> None:
    """selectors' querysets return exactly the tickets and runs policy.may_see_ticket allows,
    for every persona, over tickets of every environment by several authors."""
    people = {
        name: persona(name, *roles)
        for name, roles in {
            "dev": ["developer"],
            "lead": ["lead_developer"],
            "tl": ["tech_lead"],
            "ol": ["devops_lead"],
            "qa": ["qa"],
            "ops": ["operations"],
            "none": [],
            "multi": ["developer", "qa"],
        }.items()
    }
    root = persona("root", is_superuser=True, is_staff=True)
    tickets = [
        filed(env, author)
        for env, author in itertools.product(
            ["dev", "staging", "prod"], [people["dev"], people["qa"], people["none"]]
        )
    ]
    for user in [*people.values(), root]:
        roles = selectors.user_roles(user)
        expected = {
            t.pk
            for t in tickets
            if policy.may_see_ticket(t, user.pk, roles, superuser=user.is_superuser)
        }
        assert set(selectors.tickets_visible_to(user).values_list("pk", flat=True)) == expected
        runs = selectors.runs_visible_to(user).values_list("ticket_id", flat=True)
        assert set(runs) == expected
    # The author without any role still sees their own ticket, and only that.
    assert set(selectors.tickets_visible_to(people["none"])) == {
        t for t in tickets if t.author == people["none"]
    }


def test_seeded_prod_view_groups() -> None:
    prod = Environment.objects.get(name="prod")
    assert sorted(prod.view_groups) == ["devops_lead", "operations", "tech_lead"]
    for name in ("dev", "staging"):
        env = Environment.objects.get(name=name)
        assert {"developer", "lead_developer", "qa", "operations"} <= set(env.view_groups)


def test_the_ticket_list_page_keeps_prod_out_for_qa(author: User, qa: User) -> None:
    ticket = filed("prod", author)
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.APPROVED)
    html = page_for(qa).get("/", {"environment": "prod"}).content.decode()
    assert ticket.title not in html
