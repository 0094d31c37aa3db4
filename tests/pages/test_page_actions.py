"""One way pages refuse (pages.actions.page_action): the message on the page, and a refusal
of the person audited as access.refused with the ticket it was about, on every page that
acts on a ticket (the checklist, alarm, completion and rollback pages did not audit)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from deployments.choices import RunKind, TicketStatus
from deployments.models import AuditEvent, Environment, Ticket
from deployments.services import monitoring as monitoring_service
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

DEPLOYED = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)  # Thursday 02:30 in New York


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _monitoring_prod_ticket(author: User) -> Ticket:
    """A prod ticket whose apply just succeeded: monitoring, with its checklist."""
    ticket = TicketFactory(
        environment=Environment.objects.get(name="prod"),
        status=TicketStatus.MONITORING,
        author=author,
        deployed_at=DEPLOYED,
    )
    run = RunFactory(
        ticket=ticket, kind=RunKind.APPLY, plan=RunFactory(ticket=ticket), finished_at=DEPLOYED
    )
    DeploymentFactory(ticket=ticket, run=run, finished_at=DEPLOYED)
    with transaction.atomic():
        monitoring_service.monitoring_start(ticket, run)
    return ticket


def _refusals(ticket: Ticket) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="access.refused", ticket=ticket))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("checklist/{key}/sign/", "only operations may sign checklist items off"),
        ("monitoring/acknowledge/", "only operations may acknowledge an alarm"),
        ("complete/", "only operations may complete a ticket"),
    ],
)
@time_machine.travel(DEPLOYED + dt.timedelta(minutes=5), tick=False)
def test_a_tech_lead_refused_on_the_monitoring_forms_is_audited_with_the_ticket(
    author: User, tech_lead: User, path: str, message: str
) -> None:
    ticket = _monitoring_prod_ticket(author)
    key = ticket.checklist_items.first().key
    response = _client(tech_lead).post(
        f"/tickets/{ticket.pk}/{path.format(key=key)}", {"note": "x"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/tickets/{ticket.pk}/#monitoring"
    assert message in response.content.decode()
    [refusal] = _refusals(ticket)
    assert refusal.actor_name == "tess" and refusal.data["reason"] == message
    assert not ticket.checklist_items.filter(signed_at__isnull=False).exists()


def test_a_refused_rollback_from_the_page_is_audited_with_the_ticket(author: User) -> None:
    """The author sees their prod ticket but may not roll prod back."""
    good = DeploymentFactory(
        ticket=TicketFactory(
            environment=Environment.objects.get(name="prod"),
            author=author,
            status=TicketStatus.COMPLETED,
        ),
        finished_at=DEPLOYED - dt.timedelta(hours=3),
    )
    bad = DeploymentFactory(
        ticket=TicketFactory(
            environment=good.environment,
            author=author,
            status=TicketStatus.MONITORING,
            deployed_at=DEPLOYED,
        ),
        finished_at=DEPLOYED,
    )
    response = _client(author).post(f"/tickets/{bad.ticket_id}/rollback/", follow=True)
    assert response.redirect_chain[-1][0] == f"/tickets/{bad.ticket_id}/#rollback"
    assert "prod rollbacks are opened by" in response.content.decode()
    [refusal] = _refusals(bad.ticket)
    assert refusal.actor_name == "alice"
    assert not Ticket.objects.filter(change_type="rollback").exists()


def test_a_state_refusal_is_shown_but_not_audited(author: User, operations: User) -> None:
    """Refusals of the ticket's state (a 409 in the API) are not access refusals."""
    ticket = _monitoring_prod_ticket(author)
    with time_machine.travel(DEPLOYED + dt.timedelta(minutes=5), tick=False):
        response = _client(operations).post(f"/tickets/{ticket.pk}/complete/", follow=True)
    assert "cannot complete yet" in response.content.decode()
    assert _refusals(ticket) == []
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING


def test_bad_input_names_its_field(author: User, lead: User) -> None:
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"),
        author=author,
        status=TicketStatus.AWAITING_APPROVAL,
    )
    response = _client(lead).post(
        f"/tickets/{ticket.pk}/reject/", {"reason": "x" * 2001}, follow=True
    )
    assert "reason must be at most 2000 characters" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
