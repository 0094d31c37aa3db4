"""A ticket of a stack other than the default says so wherever it is listed (issue 21: home
queues, history, calendar, the ticket page with its run trigger), and its environment's
freezes hold it like any other."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.choices import TicketStatus
from deployments.models import Deployment, Environment, Freeze
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.pages import signed_in
from tests.helpers.stacks import sample_stacks
from tests.helpers.tickets import approve, awaiting

pytestmark = pytest.mark.django_db

TAG = '<span class="tag" title="Stack">{}</span>'


def test_the_home_queue_tags_a_ticket_of_another_stack(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    _, app = sample_stacks(devops_lead)
    tagged = awaiting("staging", author, title="Scale the app tier", stack=app)
    plain = awaiting("staging", author, title="Default stack change")
    html = signed_in(tech_lead).get("/").content.decode()
    row = html.split(tagged.title, 1)[1].split("</td>", 1)[0]
    assert TAG.format("app") in row
    other = html.split(plain.title, 1)[1].split("</td>", 1)[0]
    assert 'title="Stack"' not in other


def test_the_history_tags_a_deployment_of_another_stack(author: User, devops_lead: User) -> None:
    network, _ = sample_stacks(devops_lead)
    staging = Environment.objects.get(name="staging")
    ticket = TicketFactory(
        environment=staging, author=author, stack=network, status=TicketStatus.COMPLETED
    )
    deployment = DeploymentFactory(ticket=ticket)
    assert Deployment.objects.get(pk=deployment.pk).stack == network
    html = signed_in(author).get("/environments/staging/history/").content.decode()
    row = html.split(f"#{ticket.pk} {ticket.title}", 1)[1].split("</td>", 1)[0]
    assert TAG.format("network") in row


def test_the_calendar_names_the_stack_of_a_scheduled_ticket(
    author: User, devops_lead: User
) -> None:
    _, app = sample_stacks(devops_lead)
    with time_machine.travel(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC), tick=False):
        ticket = TicketFactory(
            environment=Environment.objects.get(name="staging"),
            author=author,
            stack=app,
            status=TicketStatus.SCHEDULED,
            scheduled_for=dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC),
            title="Roll the app tier",
        )
        html = signed_in(author).get("/calendar/?month=2026-12").content.decode()
    assert f"#{ticket.pk} [app] Roll the app tier" in html


def test_the_ticket_page_names_its_stack_and_the_deployment_that_planned_it(
    author: User, devops_lead: User
) -> None:
    network, app = sample_stacks(devops_lead)
    staging = Environment.objects.get(name="staging")
    upstream = TicketFactory(
        environment=staging, author=author, stack=network, status=TicketStatus.COMPLETED
    )
    deployed = DeploymentFactory(ticket=upstream)
    triggered = TicketFactory(environment=staging, author=author, stack=app, triggered_by=deployed)
    html = signed_in(author).get(f"/tickets/{triggered.pk}/").content.decode()
    assert 'href="/stacks/#stack-app">app</a>' in html
    assert (
        f'planned after <a href="/tickets/{upstream.pk}/">#{upstream.pk}</a> deployed its '
        "dependency network" in html
    )


def test_a_freeze_holds_every_stack_of_its_environment(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    _, app = sample_stacks(devops_lead)
    ticket = awaiting("staging", author, title="App change during a freeze", stack=app)
    assert approve(tech_lead, ticket).status_code == 200
    now = timezone.now()
    Freeze.objects.create(
        environment=Environment.objects.get(name="staging"),
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=2),
        reason="quarter-end close",
    )
    refused = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
    assert refused.status_code == 409, refused.json()
    assert "frozen" in refused.json()["detail"] and "quarter-end close" in refused.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED
