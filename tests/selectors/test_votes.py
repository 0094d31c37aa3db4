"""One way votes are built (selectors.votes_for), with each approver's roles *now*: the ticket
page, the API, the home queue, approving and the worker's start-time re-check agree.

Before, only the worker's re-check read the current roles: a Tech Lead who had left the role
still filled the Tech Lead slot on the page, in the API and in the queue, so another Tech
Lead was refused and the page said nobody else was needed."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from deployments import policy, selectors
from deployments.models import Ticket
from tests.helpers.api import api_for
from tests.helpers.tickets import approve, awaiting
from tests.helpers.users import persona

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


def _left_the_role(user: User, role: str) -> None:
    user.groups.remove(Group.objects.get(name=role))


def test_a_lead_who_left_the_role_no_longer_counts_on_the_page_or_in_the_api(
    author: User, tech_lead: User, operations: User
) -> None:
    ticket = awaiting("prod", author)
    assert approve(tech_lead, ticket).status_code == 200
    _left_the_role(tech_lead, "tech_lead")
    status = api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/").json()["approval_status"]
    assert status["met"] is False
    assert status["missing"] == ["Tech Lead", "DevOps Lead"]
    client = Client()
    client.force_login(operations)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="still-needed">a Tech Lead and a DevOps Lead<' in page


def test_another_tech_lead_takes_the_slot_of_one_who_left(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    ticket = awaiting("prod", author)
    assert approve(tech_lead, ticket).status_code == 200
    _left_the_role(tech_lead, "tech_lead")
    other = persona("tom", "tech_lead")
    # The home queue offers it to the other Tech Lead ...
    queue = api_for(other).get("/api/v1/me/queue/").json()
    assert [row["ticket"]["id"] for row in queue["approvals"]["results"]] == [ticket.pk]
    # ... who may approve it, and with the DevOps Lead's the rule is met.
    assert approve(other, ticket).status_code == 200
    response = approve(devops_lead, ticket)
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert "approved by tom (Tech Lead), otto (DevOps Lead)" in response.json()["status_reason"]


def test_votes_carry_the_roles_held_now(author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    approve(devops_lead, ticket)
    User.objects.filter(pk=devops_lead.pk).update(is_active=False)
    _left_the_role(tech_lead, "tech_lead")
    fresh = Ticket.objects.get(pk=ticket.pk)
    votes = selectors.votes_for(fresh, fresh.current_plan)
    assert [(v.approver_name, v.roles) for v in votes] == [
        ("tess", frozenset()),
        ("otto", frozenset()),
    ]
    rule = policy.rule_for(fresh, now=timezone.now())
    assert policy.counting(rule, votes) == []
    assert selectors.votes_for(fresh) == votes  # every standing approval is of that plan
