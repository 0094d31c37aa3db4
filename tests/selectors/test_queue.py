"""The home page ("what needs me"), GET /api/v1/me/queue/ and the nav badge, per persona."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.choices import TicketStatus
from deployments.models import Approval, Environment, Evidence, FollowUp, Freeze, Ticket
from deployments.pages.home import _badge_key
from deployments.selectors.queue import queue_for
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory, UserFactory
from tests.helpers.html import visible_text
from tests.helpers.pages import signed_in
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

# Prod's window: Tuesdays and Thursdays 02:00-04:00 America/New_York.
IN_WINDOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tue 03:00 EST: closes in 1 h
OUTSIDE = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # Mon 07:00 EST: opens in 19 h


def env(name: str) -> Environment:
    return Environment.objects.get(name=name)


def approved(name: str, author: User, **extra: Any) -> Ticket:
    ticket = awaiting(name, author, **extra)
    ticket.status = TicketStatus.APPROVED
    ticket.save()
    return ticket


def vote(ticket: Ticket, user: User, role: str) -> Approval:
    plan = ticket.current_plan
    return Approval.objects.create(
        ticket=ticket,
        approver=user,
        role=role,
        held_roles=[role],
        plan_run=plan,
        plan_sha256=plan.plan_sha256,
    )


def monitoring_staging(author: User, **extra: Any) -> Ticket:
    """Applied a second ago: QA's verdicts from now on count."""
    extra.setdefault("deployed_at", timezone.now() - dt.timedelta(seconds=1))
    return TicketFactory(
        environment=env("staging"), author=author, status=TicketStatus.MONITORING, **extra
    )


def evidence(ticket: Ticket, kind: str, passed: bool | None, by: User) -> Evidence:
    now = timezone.now()
    return Evidence.objects.create(
        ticket=ticket,
        kind=kind,
        passed=passed,
        token=hashlib.sha1(f"{ticket.pk}{kind}{now}".encode()).hexdigest()[:32],
        file=f"evidence/{kind}.bin",
        filename=f"{kind}.txt",
        size=1,
        sha256="0" * 64,
        content_type="text/plain",
        uploaded_by=by,
        signed_off_by=by if passed else None,
        signed_off_at=now if passed else None,
    )


def section_text(page: str, section: str) -> str:
    start = page.index(f'id="queue-{section}"')
    return page[start : page.index("</section>", start)]


# --- per persona --------------------------------------------------------------------


def test_tech_lead_sees_the_prod_ticket_waiting_with_its_wait_time(
    author: User, tech_lead: User
) -> None:
    with time_machine.travel(OUTSIDE - dt.timedelta(hours=3, minutes=5), tick=False):
        ticket = awaiting("prod", author, title="Resize the queue", risk={"level": "medium"})
    with time_machine.travel(OUTSIDE, tick=False):
        page = signed_in(tech_lead).get("/").content.decode()
        queue = queue_for(tech_lead, timezone.now())
    approvals = section_text(page, "approvals")
    assert "Resize the queue" in approvals and f"/tickets/{ticket.pk}/" in approvals
    assert "3 h 5 min" in approvals and "medium" in approvals
    assert 'id="queue-approvals"' in page and '<span class="badge">1</span>' in approvals
    assert [a.ticket.pk for a in queue.approvals] == [ticket.pk]
    assert queue.approvals[0].waiting_for == dt.timedelta(hours=3, minutes=5)


def test_approval_queue_leaves_out_own_approved_and_filled_slots(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    other_tech_lead = UserFactory(username="tina")
    other_tech_lead.groups.set(Group.objects.filter(name="tech_lead"))
    ticket = awaiting("prod", author)
    own = awaiting("prod", tech_lead)
    vote(ticket, tech_lead, "tech_lead")
    now = timezone.now()
    # Tess approved already; her own ticket is not hers to approve.
    assert queue_for(tech_lead, now).approvals_count == 0
    # The Tech Lead slot is filled: another Tech Lead is not needed, the DevOps Lead is.
    assert [a.ticket.pk for a in queue_for(other_tech_lead, now).approvals] == [own.pk]
    assert {a.ticket.pk for a in queue_for(devops_lead, now).approvals} == {ticket.pk, own.pk}


def test_emergencies_come_first_then_the_longest_waiting(author: User, tech_lead: User) -> None:
    with time_machine.travel(OUTSIDE - dt.timedelta(days=2), tick=False):
        oldest = awaiting("prod", author)
    with time_machine.travel(OUTSIDE - dt.timedelta(days=1), tick=False):
        newer = awaiting("prod", author)
    with time_machine.travel(OUTSIDE - dt.timedelta(minutes=5), tick=False):
        emergency = awaiting("prod", author, change_type="emergency")
    queue = queue_for(tech_lead, OUTSIDE)
    assert [a.ticket.pk for a in queue.approvals] == [emergency.pk, oldest.pk, newer.pk]
    assert queue.approvals[0].emergency


@pytest.mark.usefixtures("without_promotion_gate")
def test_operations_sees_the_deploy_with_its_window_countdown(
    author: User, operations: User
) -> None:
    ticket = approved("prod", author, title="Rotate the certificates")
    with time_machine.travel(OUTSIDE, tick=False):
        page = signed_in(operations).get("/").content.decode()
    deploys = section_text(page, "deploys")
    assert "Rotate the certificates" in deploys and f"/tickets/{ticket.pk}/" in deploys
    assert "window opens in 19 h" in deploys
    with time_machine.travel(IN_WINDOW, tick=False):
        page = signed_in(operations).get("/").content.decode()
        item = queue_for(operations, timezone.now()).deploys[0]
    assert "in window now, closes in 1 h" in section_text(page, "deploys")
    assert item.may_start_now and item.window.closes_at == IN_WINDOW + dt.timedelta(hours=1)


def test_the_environment_cards_read_in_the_viewers_zone(operations: User) -> None:
    """Home is one zone, the viewer's: the next window of prod (02:00 New York) reads
    08:00 for a viewer in Paris, UTC on hover."""
    client = signed_in(operations)
    client.post("/settings/timezone/", {"timezone": "Europe/Paris"})
    with time_machine.travel(OUTSIDE, tick=False):
        page = client.get("/").content.decode()
    card = page[page.index('id="env-prod"') :].split("</div>")[0]
    assert "window opens in 19 h (2026-12-01 08:00 CET)" in visible_text(card)
    assert 'title="2026-12-01 07:00 UTC"' in card and "EST" not in card


def test_a_deploy_s_reason_names_the_next_window_in_the_viewers_zone(
    author: User, operations: User
) -> None:
    """The reason beside a deploy that may not start yet reads in the viewer's zone too:
    the next window (02:00 New York) is 08:00 for a reader in Paris, the rule's own text on
    hover."""
    ticket = approved("prod", author, title="Outside the window")
    client = signed_in(operations)
    client.post("/settings/timezone/", {"timezone": "Europe/Paris"})
    with time_machine.travel(OUTSIDE, tick=False):
        item = next(d for d in queue_for(operations, OUTSIDE).deploys if d.ticket == ticket)
        page = client.get("/").content.decode()
    assert "Tue 01 Dec 02:00 EST (07:00 UTC)" in item.reason  # stored as the rules say it
    row = page[page.index("Outside the window") :].split("</tr>")[0]
    assert "the next window opens Tue 01 Dec 08:00 CET (07:00 UTC)" in visible_text(row)
    assert 'title="Tue 01 Dec 02:00 EST (07:00 UTC)"' in row


def test_a_freeze_cuts_the_open_window_and_emergencies_ignore_it(
    author: User, operations: User
) -> None:
    approved("prod", author, title="Normal")
    emergency = approved("prod", author, title="Hotfix", change_type="emergency")
    Freeze.objects.create(
        environment=env("prod"),
        starts_at=IN_WINDOW + dt.timedelta(minutes=30),
        ends_at=IN_WINDOW + dt.timedelta(days=1),
        reason="release freeze",
    )
    deploys = queue_for(operations, IN_WINDOW).deploys
    assert deploys[0].ticket.pk == emergency.pk
    assert deploys[0].countdown == "emergency: may deploy now, outside any window"
    assert deploys[1].countdown == "in window now, closes in 30 min"
    # During the freeze the next opening is the Thursday window after it ends.
    later = queue_for(operations, IN_WINDOW + dt.timedelta(hours=1)).deploys
    assert not later[1].may_start_now and later[0].may_start_now
    assert later[1].window.next_window_start == dt.datetime(2026, 12, 3, 7, 0, tzinfo=dt.UTC)


def test_scheduled_deploys_show_their_time(author: User, operations: User) -> None:
    ticket = approved("prod", author)
    ticket.status = TicketStatus.SCHEDULED
    ticket.scheduled_for = IN_WINDOW
    ticket.save()
    item = queue_for(operations, OUTSIDE).deploys[0]
    assert item.scheduled_for == IN_WINDOW
    assert item.countdown == "scheduled, starts in 20 h"


def test_qa_sees_the_staging_sign_off_and_what_it_lacks(author: User, qa: User) -> None:
    ticket = monitoring_staging(author, title="New search index")
    evidence(ticket, "smoke_tests", True, qa)
    page = signed_in(qa).get("/").content.decode()
    signoffs = section_text(page, "qa")
    assert "New search index" in signoffs and "passed qa_report" in signoffs
    assert "passed smoke_tests" not in signoffs
    evidence(ticket, "qa_report", True, qa)
    assert queue_for(qa, timezone.now()).qa_signoffs[0].missing == ()


def test_author_sees_their_tickets_unfinished_first(author: User, developer: User) -> None:
    done = TicketFactory(author=author, status=TicketStatus.COMPLETED, title="Done before")
    with time_machine.travel(timezone.now() - dt.timedelta(days=30), tick=False):
        old = TicketFactory(author=author, status=TicketStatus.CANCELLED, title="Long gone")
    open_one = TicketFactory(author=author, status=TicketStatus.PLANNING, title="Still going")
    TicketFactory(author=developer, status=TicketStatus.PLANNING, title="Not mine")
    queue = queue_for(author, timezone.now())
    assert [m.ticket.pk for m in queue.my_tickets] == [open_one.pk, done.pk]
    assert queue.my_tickets_count == 1 and old.pk not in [m.ticket.pk for m in queue.my_tickets]
    page = signed_in(author).get("/").content.decode()
    assert "Still going" in page and "Not mine" not in page


def test_overdue_follow_ups_for_leads_and_the_author(
    author: User, developer: User, tech_lead: User
) -> None:
    ticket = TicketFactory(author=author, status=TicketStatus.COMPLETED)
    FollowUp.objects.create(
        ticket=ticket, kind="post_mortem", due_at=timezone.now() - dt.timedelta(hours=2)
    )
    FollowUp.objects.create(
        ticket=ticket, kind="post_deployment_review", due_at=timezone.now() + dt.timedelta(days=1)
    )
    now = timezone.now()
    assert queue_for(tech_lead, now).follow_ups_count == 1
    assert queue_for(author, now).follow_ups_count == 1
    assert queue_for(developer, now).follow_ups_count == 0
    assert "Post-mortem" in section_text(
        signed_in(tech_lead).get("/").content.decode(), "follow-ups"
    )


def test_empty_states_say_what_to_do_next(outsider: User, developer: User) -> None:
    page = signed_in(outsider).get("/").content.decode()
    assert "You see no environment yet: ask an administrator for a role." in page
    assert "You have no open tickets." in page and 'id="queue-approvals"' not in page
    page = signed_in(developer).get("/").content.decode()
    assert "File a ticket</a> to deploy a commit." in page
    assert "Nothing is approved and waiting to be deployed." in page  # dev deploys dev
    assert "Nothing deployed here yet." in page


def test_environment_strip_shows_the_last_deployment_and_hides_prod(
    author: User, developer: User, operations: User
) -> None:
    DeploymentFactory(
        ticket=TicketFactory(environment=env("prod"), author=author, status="completed"),
        finished_at=timezone.now() - dt.timedelta(days=1),
    )
    last = DeploymentFactory(
        ticket=TicketFactory(environment=env("prod"), author=author, status="completed"),
        rolled_back_at=timezone.now(),
    )
    page = signed_in(operations).get("/").content.decode()
    strip = page[page.index('id="env-prod"') :]
    assert f"<code>{last.commit_sha[:10]}</code>" in strip and "rolled back" in strip
    assert "/environments/prod/history/" in strip
    items = {e.environment.name: e for e in queue_for(operations, timezone.now()).environments}
    assert items["prod"].last is not None and items["prod"].last.deployment_id == last.pk
    dev_view = signed_in(developer).get("/").content.decode()
    assert 'id="env-prod"' not in dev_view and 'id="env-dev"' in dev_view


def test_environment_strip_says_busy_while_an_apply_runs(author: User, operations: User) -> None:
    ticket = TicketFactory(environment=env("prod"), author=author, status="applying")
    RunFactory(ticket=ticket, kind="apply", status="running", plan=RunFactory(ticket=ticket))
    item = {e.environment.name: e for e in queue_for(operations, timezone.now()).environments}
    assert item["prod"].busy and not item["staging"].busy


# --- the API ------------------------------------------------------------------------


def test_me_queue_api_has_the_same_sections(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    body = api_for(tech_lead).get("/api/v1/me/queue/").json()
    assert body["approvals"]["count"] == 1
    first = body["approvals"]["results"][0]
    assert first["ticket"]["id"] == ticket.pk and first["ticket"]["environment"] == "prod"
    assert first["waiting_seconds"] >= 0 and first["emergency"] is False
    assert body["waiting"] == 1
    assert {"approvals", "my_tickets", "follow_ups"} <= set(body["sections"])
    assert "qa_signoffs" not in body["sections"]  # tess deploys dev and staging
    assert [e["name"] for e in body["environments"]] == ["dev", "staging", "prod"]
    assert body["environments"][2]["window"]["has_window"] is True
    for key in ("deploys", "qa_signoffs", "follow_ups", "follow_ups_due_soon", "monitoring"):
        assert body[key] == {"count": 0, "results": []}
    assert body["my_tickets"] == {"count": 0, "finished_count": 0, "results": []}


def test_me_queue_api_needs_sign_in() -> None:
    assert api_for(None).get("/api/v1/me/queue/").status_code in (401, 403)


# --- the nav badge ------------------------------------------------------------------


def test_nav_badge_counts_what_waits_and_costs_other_pages_nothing(
    author: User, tech_lead: User
) -> None:
    awaiting("prod", author)
    awaiting("staging", author)
    client = signed_in(tech_lead)
    assert 'id="queue-badge" title="Things waiting for you">2<' in client.get("/").content.decode()
    with CaptureQueriesContext(connection) as with_badge:
        page = client.get("/environments/").content.decode()
    assert 'id="queue-badge" title="Things waiting for you">2<' in page
    # The same page with the badge switched off: no more queries for the badge.
    cache.delete(_badge_key(tech_lead))
    with CaptureQueriesContext(connection) as without_badge:
        page = client.get("/environments/").content.decode()
    assert 'id="queue-badge"' not in page
    assert len(with_badge) == len(without_badge)


def test_nav_badge_is_refreshed_once_stale(settings: Any, author: User, tech_lead: User) -> None:
    client = signed_in(tech_lead)
    client.get("/")
    awaiting("prod", author)
    assert 'id="queue-badge"' not in client.get("/environments/").content.decode()
    with time_machine.travel(
        timezone.now() + dt.timedelta(seconds=settings.QUEUE_BADGE_MAX_AGE + 5)
    ):
        page = client.get("/environments/").content.decode()
    assert 'id="queue-badge" title="Things waiting for you">1<' in page


# --- query budgets ------------------------------------------------------------------


@pytest.fixture
def everyone(db: None) -> User:
    """One person holding every role, so every section of the queue is read."""
    user = UserFactory(username="max")
    user.groups.set(Group.objects.all())
    return user


def _fill(n: int, author: User, lead: User) -> None:
    """n rows in every section for ``lead`` (who holds every role)."""
    for i in range(n):
        awaiting("prod", author)
        approved("prod", author)
        ticket = monitoring_staging(author)
        evidence(ticket, "smoke_tests", i % 2 == 0, lead)
        mine = TicketFactory(author=lead, status=TicketStatus.PLANNING)
        FollowUp.objects.create(
            ticket=mine, kind="post_mortem", due_at=timezone.now() - dt.timedelta(hours=1)
        )
        DeploymentFactory(
            ticket=TicketFactory(environment=env(("dev", "staging", "prod")[i % 3]), author=author)
        )


def _count(fetch: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = fetch()
    assert response.status_code == 200
    return len(ctx)


@pytest.mark.parametrize("path", ["/", "/api/v1/me/queue/"])
def test_home_and_queue_api_query_budget(
    path: str, author: User, everyone: User, django_assert_max_num_queries: Any
) -> None:
    client: Any = signed_in(everyone) if path == "/" else api_for(everyone)
    client.get(path)  # the first request may set up the session's time zone
    _fill(3, author, everyone)
    small = _count(lambda: client.get(path))
    _fill(17, author, everyone)
    # 10, and 3 for the plans' policy checks, results and overrides (one each, any number).
    with django_assert_max_num_queries(13):
        response = client.get(path)
    big = _count(lambda: client.get(path))
    assert small == big
    queue = queue_for(everyone, timezone.now())
    assert queue.approvals_count == 20 and queue.deploys_count == 20
    assert queue.qa_signoffs_count == 20 and queue.follow_ups_count == 20
    assert response.status_code == 200


# --- scope --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona",
    ["author", "developer", "lead", "tech_lead", "devops_lead", "qa", "operations", "outsider"],
)
def test_the_queue_shows_only_what_the_person_may_see(
    persona: str, request: pytest.FixtureRequest, author: User, developer: User
) -> None:
    """Every ticket in every section passes policy.may_see_ticket; the strip holds exactly
    the environments whose tickets the person sees (prod: operations and the prod leads)."""
    from deployments import policy, selectors

    user = request.getfixturevalue(persona)
    for name in ("dev", "staging", "prod"):
        awaiting(name, developer)
        approved(name, developer)
        DeploymentFactory(ticket=TicketFactory(environment=env(name), author=developer))
        FollowUp.objects.create(
            ticket=TicketFactory(environment=env(name), author=author, status="completed"),
            kind="post_mortem",
            due_at=timezone.now() - dt.timedelta(hours=1),
        )
    monitoring_staging(developer)
    body = api_for(user).get("/api/v1/me/queue/").json()
    roles = selectors.user_roles(user)
    shown = {
        item["ticket"]["id"]
        for key in ("approvals", "deploys", "qa_signoffs", "my_tickets", "follow_ups")
        for item in body[key]["results"]
    }
    for ticket in Ticket.objects.filter(pk__in=shown).select_related("environment"):
        assert policy.may_see_ticket(ticket, user.pk, roles), (persona, ticket.pk)
    assert {e["name"] for e in body["environments"]} == {
        e.name for e in Environment.objects.all() if policy.can_view(e, roles)
    }
    for item in body["environments"]:
        if item["last_deployment"]:
            last = Ticket.objects.select_related("environment").get(
                pk=item["last_deployment"]["ticket"]
            )
            assert policy.may_see_ticket(last, user.pk, roles)
