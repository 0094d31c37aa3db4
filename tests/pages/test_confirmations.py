"""Issue 22: cancelling asks first, and the re-authentication page says what it confirms."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, Ticket
from tests.helpers.pages import signed_in
from tests.helpers.tickets import awaiting

pytestmark = pytest.mark.django_db


def test_cancel_is_a_link_to_a_confirmation_that_changes_nothing(author: User) -> None:
    ticket = awaiting("staging", author, title="Scale the workers")
    client = signed_in(author)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f'href="/tickets/{ticket.pk}/cancel/confirm/"' in page
    confirm = client.get(f"/tickets/{ticket.pk}/cancel/confirm/").content.decode()
    assert f"Cancel ticket #{ticket.pk} “Scale the workers”?" in confirm
    assert "cannot be undone" in confirm and 'id="confirm-cancel"' in confirm
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    response = client.post(f"/tickets/{ticket.pk}/cancel/", {"reason": "not needed"})
    assert response.status_code == 302
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.CANCELLED
    assert AuditEvent.objects.filter(ticket=ticket, action="ticket.transition").exists()


def test_the_confirmation_says_when_it_may_not_be_cancelled(
    author: User, outsider: User, qa: User
) -> None:
    ticket = awaiting("staging", author)
    page = signed_in(qa).get(f"/tickets/{ticket.pk}/cancel/confirm/").content.decode()
    assert "cannot be cancelled now" in page and 'id="confirm-cancel"' not in page
    assert signed_in(outsider).get(f"/tickets/{ticket.pk}/cancel/confirm/").status_code == 404


def test_the_reauthentication_page_names_the_action(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author, title="Add the read replica")
    page = (
        signed_in(tech_lead)
        .get(f"/accounts/reauthenticate/?next=/tickets/{ticket.pk}/approve/")
        .content.decode()
    )
    assert (
        f"You are confirming: <strong>approve ticket #{ticket.pk} “Add the read replica” "
        "(prod)</strong>" in page
    )
    deploy = (
        signed_in(tech_lead)
        .get(f"/accounts/reauthenticate/?next=/tickets/{ticket.pk}/deploy/")
        .content.decode()
    )
    assert f"deploy ticket #{ticket.pk}" in deploy


def test_a_next_the_person_may_not_see_names_nothing(author: User, developer: User) -> None:
    ticket = awaiting("prod", author, title="Secret prod change")
    page = (
        signed_in(developer)
        .get(f"/accounts/reauthenticate/?next=/tickets/{ticket.pk}/approve/")
        .content.decode()
    )
    assert "Secret prod change" not in page and "You are confirming" not in page
