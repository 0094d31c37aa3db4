"""Other tickets named on a ticket go through the viewer's visibility (issue 16, hole 2).

dev1 (alice) and dev2 (dave) are developers: each sees their own prod tickets and no one
else's (404). Their own ticket's page and API never name the other's: not as a schedule
conflict, not as the last known good deployment, not as the staging ticket it is promoted
from, not as the ticket a rollback rolls back. Operations, who see prod, get everything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, TicketFactory

pytestmark = pytest.mark.django_db

# Thu 3 Dec 2026 02:30 New York: inside prod's window (scheduling needs no "now" here).
IN_WINDOW = dt.datetime(2026, 12, 3, 7, 30, tzinfo=dt.UTC)
SECRET = "Rotate the payments database password"


def _prod() -> Environment:
    return Environment.objects.get(name="prod")


def _page(user: User, ticket: Ticket) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/tickets/{ticket.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _detail(user: User, ticket: Ticket) -> dict[str, Any]:
    response = api_for(user).get(f"/api/v1/tickets/{ticket.pk}/")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_schedule_conflict_never_names_a_ticket_the_viewer_cannot_see(
    author: User, developer: User, operations: User
) -> None:
    mine = TicketFactory(
        environment=_prod(), author=author, status=TicketStatus.SCHEDULED, scheduled_for=IN_WINDOW
    )
    theirs = TicketFactory(
        environment=_prod(),
        author=developer,
        status=TicketStatus.SCHEDULED,
        scheduled_for=IN_WINDOW + dt.timedelta(minutes=5),
        title=SECRET,
    )
    assert api_for(author).get(f"/api/v1/tickets/{theirs.pk}/").status_code == 404
    conflict = _detail(author, mine)["schedule_conflict"]
    assert conflict["position"] == 1 and conflict["size"] == 2 and conflict["hidden"] == 1
    assert [t["id"] for t in conflict["tickets"]] == [mine.pk]
    html = _page(author, mine)
    assert (
        'id="schedule-conflict"' in html
        and "1 ticket you cannot see among them: this one runs 1 of 2" in html
    )
    assert SECRET not in html and f"/tickets/{theirs.pk}/" not in html
    assert SECRET not in str(_detail(author, mine))
    # Operations see prod: both, in run order.
    seen = _detail(operations, theirs)["schedule_conflict"]
    assert [t["id"] for t in seen["tickets"]] == [mine.pk, theirs.pk]
    assert seen["position"] == 2 and seen["hidden"] == 0
    html = _page(operations, mine)
    assert SECRET in html and f"/tickets/{theirs.pk}/" in html


def test_the_last_known_good_hides_the_ticket_that_deployed_it(
    author: User, developer: User, operations: User
) -> None:
    now = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)
    theirs = TicketFactory(
        environment=_prod(), author=developer, status=TicketStatus.COMPLETED, title=SECRET
    )
    good = DeploymentFactory(ticket=theirs, finished_at=now - dt.timedelta(days=2))
    mine = TicketFactory(
        environment=_prod(), author=author, status=TicketStatus.MONITORING, deployed_at=now
    )
    DeploymentFactory(ticket=mine, finished_at=now)
    lkg = _detail(author, mine)["rollback_plan"]["last_known_good"]
    assert lkg["ticket"] is None and lkg["commit_sha"] == good.commit_sha
    listed = api_for(author).get("/api/v1/tickets/?environment=prod").json()["results"]
    assert [t["rollback_plan"]["last_known_good"]["ticket"] for t in listed] == [None]
    html = _page(author, mine)
    assert good.commit_sha[:12] in html  # the environment's state is not the ticket's
    assert f"/tickets/{theirs.pk}/" not in html and f"ticket #{theirs.pk}" not in html
    # The rollback confirm page (any viewer may open it) names no hidden ticket either.
    client = Client()
    client.force_login(author)
    confirm = client.get(f"/tickets/{mine.pk}/rollback/").content.decode()
    assert good.commit_sha in confirm and f"/tickets/{theirs.pk}/" not in confirm
    assert "a ticket you cannot see" in confirm
    # Operations see which ticket it was.
    assert _detail(operations, mine)["rollback_plan"]["last_known_good"]["ticket"] == theirs.pk
    assert f"/tickets/{theirs.pk}/" in _page(operations, mine)


def test_a_rollback_never_names_the_ticket_it_rolls_back_to_who_cannot_see_it(
    author: User, developer: User
) -> None:
    """A rollback's author who may not see the environment (a developer who opened it where
    developers deploy, before losing sight of it) still sees their rollback, not the rest."""
    now = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)
    target = DeploymentFactory(
        ticket=TicketFactory(environment=_prod(), author=developer, status=TicketStatus.COMPLETED),
        finished_at=now - dt.timedelta(days=1),
    )
    undone = TicketFactory(
        environment=_prod(), author=developer, status=TicketStatus.MONITORING, title=SECRET
    )
    DeploymentFactory(ticket=undone, finished_at=now)
    rollback = TicketFactory(
        environment=_prod(),
        author=author,
        change_type="rollback",
        rollback_of=undone,
        rollback_target=target,
        rollback_mode="planned",
    )
    body = _detail(author, rollback)
    assert body["rollback_of"] is None
    assert body["rollback_target"]["ticket"] is None
    assert body["rollback_target"]["commit_sha"] == target.commit_sha
    listed = api_for(author).get("/api/v1/tickets/?environment=prod").json()["results"]
    assert [t["rollback_of"] for t in listed] == [None]
    html = _page(author, rollback)
    assert 'id="rollback-of"' in html and "a ticket you cannot see" in html
    assert f"/tickets/{undone.pk}/" not in html and SECRET not in html
    assert f"ticket #{target.ticket_id}" not in html
    # Its author sees both: the original is theirs.
    body = _detail(developer, undone)
    assert api_for(developer).get(f"/api/v1/tickets/{rollback.pk}/").status_code == 404
    assert body["id"] == undone.pk


def test_the_staging_ticket_is_shown_only_to_who_may_see_it(
    author: User, operations: User, qa: User
) -> None:
    staging = Environment.objects.get(name="staging")
    staging.view_groups = ["qa", "operations"]  # developers do not see staging here
    staging.save()
    sha = "c" * 40
    validated = TicketFactory(
        environment=staging, author=qa, status=TicketStatus.MONITORING, commit_sha=sha
    )
    mine = TicketFactory(environment=_prod(), author=author, commit_sha=sha)
    assert _detail(author, mine)["staging_ticket"] is None
    html = _page(author, mine)
    assert f"/tickets/{validated.pk}/" not in html and f"ticket #{validated.pk}" not in html
    assert 'id="promotion-gate"' in html and "validated in staging first" in html
    assert _detail(operations, mine)["staging_ticket"]["id"] == validated.pk
    assert f"/tickets/{validated.pk}/" in _page(operations, mine)
