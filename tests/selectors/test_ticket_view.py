"""One view model of a ticket (selectors.ticket_view): its page and its API detail both read
it, so they show the same thing to the same person."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import selectors
from deployments.selectors import tickets as ticket_selectors
from tests.helpers.api import api_for
from tests.helpers.tickets import approve, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

# What the page shows for each action the API lists.
FORMS = {
    "approve": 'id="approve-form"',
    "reject": 'id="reject-form"',
    "plan": 'id="plan-form"',
    "cancel": "Cancel ticket",
    "deploy": 'id="deploy-button"',
}


def _page(user: User, ticket_id: int) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/tickets/{ticket_id}/").content.decode()


@pytest.mark.parametrize("who", ["author", "tech_lead", "devops_lead", "operations"])
def test_the_page_offers_what_the_api_says_may_be_done(
    request: pytest.FixtureRequest, author: User, tech_lead: User, who: str
) -> None:
    ticket = awaiting("prod", author)
    approve(tech_lead, ticket)
    user = request.getfixturevalue(who)
    actions = api_for(user).get(f"/api/v1/tickets/{ticket.pk}/").json()["available_actions"]
    page = _page(user, ticket.pk)
    shown = {name for name, marker in FORMS.items() if marker in page}
    assert shown == set(actions) - {"rollback"}, (who, actions)


def test_page_and_api_detail_are_built_from_the_ticket_view(
    author: User, operations: User, monkeypatch: Any
) -> None:
    ticket = awaiting("prod", author)
    built: list[tuple[str, int]] = []
    real = ticket_selectors.TicketView.__init__

    def spy(self: Any, ticket: Any, user: Any, now: Any) -> None:
        built.append((user.get_username(), ticket.pk))
        real(self, ticket, user, now)

    monkeypatch.setattr(ticket_selectors.TicketView, "__init__", spy)
    _page(operations, ticket.pk)
    api_for(operations).get(f"/api/v1/tickets/{ticket.pk}/")
    assert built == [("opal", ticket.pk), ("opal", ticket.pk)]


def test_each_part_is_read_once(author: User, operations: User, monkeypatch: Any) -> None:
    """The approval status, the actions and the re-plan question all use one set of votes."""
    ticket = awaiting("prod", author)
    calls: list[int] = []
    real = ticket_selectors.votes_for

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ticket_selectors, "votes_for", counted)
    view = selectors.ticket_view(
        selectors.ticket_get(operations, ticket.pk), operations, ticket.created_at
    )
    assert view.approval_status["missing"] == ["Tech Lead", "DevOps Lead"]
    assert "approve" not in view.available_actions  # operations holds no approver role
    assert view.replan_voids is False
    assert calls == [1]
