"""A staging ticket's page shows no prod-only sections: no risk section (questionnaire,
blast radius, rollback plan) unless its plan scored medium or high (a destroyed data
holder is worth reading anywhere), and no rollback box for someone who may not roll
back there, where prod shows them the reason."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory
from tests.helpers.pages import login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

LOW = {"level": "low", "score": 0, "reasons": []}
HIGH = {
    "level": "high",
    "score": 5,
    "reasons": ["replaces a database: +3", "deletes a bucket that holds data: +2"],
}


def _deployed(env: str, author: User, risk: dict[str, object]) -> Ticket:
    """A completed ticket of ``env`` with its plan and its deployment, after an earlier one
    (there is something to roll back to)."""
    environment = Environment.objects.get(name=env)
    DeploymentFactory(ticket=TicketFactory(environment=environment, author=author))
    ticket = TicketFactory(
        environment=environment, author=author, status=TicketStatus.COMPLETED, risk=risk
    )
    ticket.current_plan = RunFactory(
        ticket=ticket, summary={"add": 1, "change": 0, "destroy": 0, "resources": []}
    )
    ticket.save()
    DeploymentFactory(ticket=ticket)
    return ticket


def _page(user: User, ticket: Ticket) -> str:
    response = login(user.username).get(f"/tickets/{ticket.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_staging_ticket_shows_no_prod_only_sections(author: User, operations: User) -> None:
    staging = _deployed("staging", author, LOW)
    page = _page(operations, staging)  # sees staging, may not roll it back
    assert 'id="timeline"' in page
    assert 'id="risk"' not in page and 'id="risk-questionnaire"' not in page
    assert 'id="rollback"' not in page and 'id="rollback-why"' not in page
    # Its author may roll back staging: the box is there, with the button.
    page = _page(author, staging)
    assert 'id="rollback-button"' in page and 'id="risk"' not in page
    # The same ticket in prod shows both: the risk section, and why she may not roll back.
    prod = _deployed("prod", author, LOW)
    page = _page(author, prod)
    assert 'id="risk"' in page and "No rollback plan given." in page
    assert 'id="rollback-why"' in page and 'id="rollback-button"' not in page


def test_a_staging_ticket_awaiting_approval_shows_no_prod_only_sections(
    author: User, lead: User
) -> None:
    ticket = TicketFactory(
        environment=Environment.objects.get(name="staging"), author=author, risk=LOW
    )
    ticket.current_plan = RunFactory(ticket=ticket, summary={"add": 1, "resources": []})
    ticket.save()
    page = _page(lead, ticket)
    assert 'id="approvals"' in page  # the approve panel is not prod-only
    assert 'id="risk"' not in page and 'id="rollback"' not in page


@pytest.mark.parametrize("level", ["medium", "high"])
def test_a_staging_plan_scored_medium_or_high_shows_its_risk(
    level: str, author: User, operations: User
) -> None:
    staging = _deployed("staging", author, {**HIGH, "level": level})
    page = _page(operations, staging)
    section = page[page.index('<section id="risk"') :].split("</section>")[0]
    assert f'id="risk-level">{level}<' in section
    assert "replaces a database: +3" in section and "holds data: +2" in section
    assert 'id="risk-questionnaire"' not in section  # none was asked for
    assert 'id="rollback"' not in page  # still no rollback box for operations here
