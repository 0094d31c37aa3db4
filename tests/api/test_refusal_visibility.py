"""Refusals on a ticket are audited with the ticket (issue 16, hole 4): the audit trail's
visibility filter then applies, so a Lead Developer, who reads the trail but not prod
tickets, never reads who tried what on a prod ticket."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Environment
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = pytest.mark.django_db


def _refusals(user: User) -> list[dict[str, Any]]:
    response = api_for(user).get("/api/v1/audit/?action=access.refused")
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_a_refusal_on_a_prod_ticket_is_read_only_by_who_sees_the_ticket(
    author: User, lead: User, operations: User, tech_lead: User
) -> None:
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
        title="prod change",
    )
    # The author (a developer) may see it but may not deploy prod: 403, recorded.
    refused = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert refused.status_code == 403
    # A refusal on the page (a message, not a 403) is recorded the same way.
    client = Client()
    client.force_login(author)
    client.post(f"/tickets/{ticket.pk}/reject/", {"reason": "mine"})
    events = AuditEvent.objects.filter(action="access.refused").order_by("id")
    assert [e.ticket_id for e in events] == [ticket.pk, ticket.pk]
    assert events[0].data["path"] == f"/api/v1/tickets/{ticket.pk}/deploy/"
    # A Lead Developer reads the trail, but not this ticket's refusals (API and page).
    assert api_for(lead).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert _refusals(lead) == []
    lead_client = Client()
    lead_client.force_login(lead)
    page = lead_client.get("/audit/?action=access.refused").content.decode()
    assert f"/tickets/{ticket.pk}/deploy/" not in page and "prod deploys are done by" not in page
    assert "you authored this ticket" not in page
    # Those who see prod read both.
    for reader in (operations, tech_lead):
        assert [e["ticket"] for e in _refusals(reader)] == [ticket.pk, ticket.pk]


def test_a_refusal_about_a_run_records_the_run_s_ticket(author: User, lead: User) -> None:
    ticket = TicketFactory(environment=Environment.objects.get(name="prod"), author=author)
    run = RunFactory(ticket=ticket)
    # A refused request about the run (here: a method nobody may use) names its ticket.
    from django.test import RequestFactory
    from django.urls import resolve

    from deployments.lib.middleware import refused_ticket_id

    request = RequestFactory().get(f"/api/v1/runs/{run.pk}/")
    request.resolver_match = resolve(f"/api/v1/runs/{run.pk}/")
    assert refused_ticket_id(request) == ticket.pk
    request = RequestFactory().get(f"/runs/{run.pk}/log/")
    request.resolver_match = resolve(f"/runs/{run.pk}/log/")
    assert refused_ticket_id(request) == ticket.pk
    request = RequestFactory().get("/api/v1/audit/")
    request.resolver_match = resolve("/api/v1/audit/")
    assert refused_ticket_id(request) is None


def test_a_refusal_about_no_ticket_stays_readable_by_every_audit_reader(
    author: User, lead: User
) -> None:
    assert api_for(author).get("/api/v1/audit/").status_code == 403
    (event,) = _refusals(lead)
    assert event["ticket"] is None and event["data"]["path"] == "/api/v1/audit/"
