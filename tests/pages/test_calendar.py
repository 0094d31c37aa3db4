"""The ticket page's schedule section, the change calendar and the per-user .ics feeds."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from deployments.choices import TicketStatus
from deployments.models import AuditEvent, CalendarFeedToken, Environment, Freeze, Ticket
from tests.helpers.factories import TicketFactory
from tests.helpers.html import visible_text
from tests.helpers.tickets import approved

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

OUTSIDE = "2026-11-24 12:00:00+00:00"  # Tue 07:00 New York
THU_OPEN = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)


def login(username: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"login": username, "password": "pw"})
    assert response.status_code == 302, response.content
    return client


@time_machine.travel(OUTSIDE, tick=False)
def test_ops_schedules_for_the_next_window_in_one_click(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    client = login("opal")
    client.post("/settings/timezone/", {"timezone": "Europe/Paris"})
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "Schedule for the next window (Thu 26 Nov 02:00 EST (07:00 UTC))" in visible_text(page)
    response = client.post(f"/tickets/{ticket.pk}/schedule/", {"next_window": "1"}, follow=True)
    html = response.content.decode()
    # One zone in the panel (the window's, which its form reads too), said once; the
    # viewer's own time on hover.
    panel = html.split('<section id="schedule">')[1].split("</section>")[0]
    assert "Times here are in prod's change-window zone, America/New_York" in visible_text(panel)
    scheduled_for = panel.split('id="scheduled-for"')[1].split("</p>")[0]
    assert "Scheduled for Thu 26 Nov 02:00 EST (07:00 UTC) in the change window" in (
        visible_text(scheduled_for)
    )
    assert (
        '<time datetime="2026-11-26T07:00:00Z" title="2026-11-26 08:00 CET your time">'
        in scheduled_for
    )
    assert "CET" not in visible_text(panel)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SCHEDULED and ticket.scheduled_for == THU_OPEN
    assert 'id="unschedule-form"' in html


@time_machine.travel(OUTSIDE, tick=False)
def test_the_datetime_form_reads_the_environment_zone_and_refuses_outside(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    client = login("opal")
    bad = client.post(f"/tickets/{ticket.pk}/schedule/", {"at": "2026-11-26T05:00"}, follow=True)
    assert "is outside prod&#x27;s change window" in bad.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPROVED
    junk = client.post(f"/tickets/{ticket.pk}/schedule/", {"at": "soon"}, follow=True)
    assert "give a date and time" in junk.content.decode()
    ok = client.post(f"/tickets/{ticket.pk}/schedule/", {"at": "2026-11-26T03:00"}, follow=True)
    assert "Scheduled for Thu 26 Nov 03:00 EST (08:00 UTC)" in ok.content.decode()


@time_machine.travel(OUTSIDE, tick=False)
def test_others_see_no_schedule_buttons(author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    page = login("tess").get(f"/tickets/{ticket.pk}/").content.decode()
    assert "schedule-next-button" not in page
    response = login("tess").post(
        f"/tickets/{ticket.pk}/schedule/", {"next_window": "1"}, follow=True
    )
    assert "prod deploys are done (and scheduled) by Operations" in response.content.decode()


@time_machine.travel(OUTSIDE, tick=False)
def test_calendar_week_and_month_show_windows_freezes_scheduled_and_conflicts(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    first = approved("prod", author, tech_lead, devops_lead)
    second = approved("prod", author, tech_lead, devops_lead)
    client = login("opal")
    client.post(f"/tickets/{first.pk}/schedule/", {"next_window": "1"})
    client.post(f"/tickets/{second.pk}/schedule/", {"at": "2026-11-26T02:30"})
    Freeze.objects.create(
        environment=Environment.objects.get(name="prod"),
        starts_at=dt.datetime(2026, 11, 27, 5, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 11, 28, 5, tzinfo=dt.UTC),
        reason="Black Friday",
    )
    week = client.get("/calendar/").content.decode()
    assert 'href="/calendar/"' in client.get("/").content.decode()  # the nav link
    assert "Thu 26 Nov 02:00 EST (07:00 UTC) \u2013 Thu 26 Nov 04:00 EST (09:00 UTC)" in week
    assert "Tue 24 Nov 02:00 EST (07:00 UTC)" in week
    assert "prod freeze: Black Friday" in week
    assert f"#{first.pk} {first.title}" in week and f"#{second.pk} {second.title}" in week
    assert f"conflict: 2 tickets in this window, run in order #{first.pk}, #{second.pk}" in week
    month = client.get("/calendar/?view=month&start=2026-12-01").content.decode()
    assert "Tue 29 Dec 02:00 EST (07:00 UTC)" in month
    assert client.get("/calendar/?view=nonsense&start=garbage").status_code == 200
    # The ticket page shows the conflict with its order.
    page = client.get(f"/tickets/{second.pk}/").content.decode()
    assert "they run one after the other in this order" in page and "(this ticket)" in page


@time_machine.travel(OUTSIDE, tick=False)
def test_calendar_shows_only_what_the_user_may_see(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    developer: User,
    outsider: User,
) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    login("opal").post(f"/tickets/{ticket.pk}/schedule/", {"next_window": "1"})
    page = login(developer.username).get("/calendar/").content.decode()
    assert ticket.title not in page  # someone else's prod ticket: not visible
    assert "prod change window" in page  # the policy of an environment they may file in
    assert "prod change window" not in login("charlie").get("/calendar/").content.decode()


@time_machine.travel(OUTSIDE, tick=False)
def test_ics_feed_with_a_per_user_token(
    author: User,
    tech_lead: User,
    devops_lead: User,
    operations: User,
    developer: User,
    outsider: User,
) -> None:
    ticket = approved("prod", author, tech_lead, devops_lead)
    client = login("opal")
    client.post(f"/tickets/{ticket.pk}/schedule/", {"next_window": "1"})
    assert client.get("/calendar/prod.ics?token=nope").status_code == 404
    assert client.post("/calendar/feed-token/").status_code == 302
    token = CalendarFeedToken.objects.get(user=operations).token
    assert token in client.get("/calendar/").content.decode()
    feed = Client().get(f"/calendar/prod.ics?token={token}")
    assert feed.status_code == 200 and feed["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(feed.content)
    events = [c for c in cal.walk("VEVENT")]
    windows = [e for e in events if str(e["summary"]) == "prod change window"]
    assert len(windows) >= 16  # Tue/Thu over the next 8 weeks
    starts = sorted(e.decoded("dtstart") for e in windows)
    upcoming = [s for s in starts if s >= THU_OPEN - dt.timedelta(days=2)]
    assert upcoming[0] == dt.datetime(2026, 11, 24, 7, tzinfo=dt.UTC)
    assert upcoming[1] == THU_OPEN
    assert str(upcoming[1].tzinfo) == "America/New_York"
    assert b"TZID=America/New_York" in feed.content and b"BEGIN:VTIMEZONE" in feed.content
    assert any(str(e["summary"]).startswith(f"#{ticket.pk}") for e in events)
    scheduled = next(e for e in events if str(e["summary"]).startswith(f"#{ticket.pk}"))
    assert str(scheduled["url"]) == f"http://testserver/tickets/{ticket.pk}/"
    # Visibility: a developer's feed has the window but not others' tickets; someone without
    # a role gets 404; rotation kills old links.
    dev_client = login(developer.username)
    dev_client.post("/calendar/feed-token/")
    dev_token = CalendarFeedToken.objects.get(user=developer).token
    dev_feed = Client().get(f"/calendar/prod.ics?token={dev_token}")
    assert dev_feed.status_code == 200
    assert (
        b"prod change window" in dev_feed.content and ticket.title.encode() not in dev_feed.content
    )
    login("charlie").post("/calendar/feed-token/")
    nobody = CalendarFeedToken.objects.get(user=outsider).token
    assert Client().get(f"/calendar/prod.ics?token={nobody}").status_code == 404
    client.post("/calendar/feed-token/")
    assert Client().get(f"/calendar/prod.ics?token={token}").status_code == 404
    assert AuditEvent.objects.filter(action="calendar.feed_token.rotate").count() == 1


def test_summer_window_in_the_feed_is_06_utc(operations: User) -> None:
    with time_machine.travel("2026-07-01 12:00:00+00:00", tick=False):
        client = login("opal")
        client.post("/calendar/feed-token/")
        token = CalendarFeedToken.objects.get(user=operations).token
        feed = Client().get(f"/calendar/prod.ics?token={token}")
    cal = icalendar.Calendar.from_ical(feed.content)
    starts = sorted(
        e.decoded("dtstart")
        for e in cal.walk("VEVENT")
        if str(e["summary"]) == "prod change window"
    )
    july = [s for s in starts if s >= dt.datetime(2026, 7, 1, tzinfo=dt.UTC)]
    assert july[0] == dt.datetime(2026, 7, 2, 6, tzinfo=dt.UTC)  # Thu 02:00 EDT


def test_admin_declares_changes_and_lifts_freezes_audited(db: None) -> None:
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    prod = Environment.objects.get(name="prod")
    data = {
        "environment": prod.pk,
        "starts_at_0": "2026-11-27",
        "starts_at_1": "05:00:00",
        "ends_at_0": "2026-11-27",
        "ends_at_1": "04:00:00",
        "reason": "Black Friday",
    }
    bad = client.post("/admin/deployments/freeze/add/", data)
    assert bad.status_code == 200 and Freeze.objects.count() == 0
    good = client.post("/admin/deployments/freeze/add/", {**data, "ends_at_0": "2026-11-28"})
    assert good.status_code == 302
    freeze = Freeze.objects.get()
    assert freeze.declared_by == admin_user
    declared = AuditEvent.objects.get(action="freeze.declare")
    assert declared.actor_name == "root" and declared.data["reason"] == "Black Friday"
    client.post(
        f"/admin/deployments/freeze/{freeze.pk}/change/", {**data, "ends_at_0": "2026-11-29"}
    )
    assert AuditEvent.objects.filter(action="freeze.update").count() == 1
    client.post(f"/admin/deployments/freeze/{freeze.pk}/delete/", {"post": "yes"})
    assert Freeze.objects.count() == 0
    assert AuditEvent.objects.filter(action="freeze.delete").count() == 1


@time_machine.travel(OUTSIDE, tick=False)
def test_environment_page_shows_next_window_in_its_zone_and_freezes(operations: User) -> None:
    Freeze.objects.create(
        environment=Environment.objects.get(name="prod"),
        starts_at=THU_OPEN - dt.timedelta(hours=1),
        ends_at=THU_OPEN + dt.timedelta(hours=3),
        reason="product launch",
    )
    page = visible_text(login("opal").get("/environments/").content.decode())
    assert "next: Tue 01 Dec 02:00 EST (07:00 UTC)" in page
    assert (
        "freeze Thu 26 Nov 01:00 EST (06:00 UTC) \u2013 Thu 26 Nov 05:00 EST (10:00 UTC): "
        "product launch" in page
    )


@time_machine.travel(OUTSIDE, tick=False)
def test_calendar_days_and_every_time_are_in_the_viewers_zone(
    author: User,
) -> None:
    """A deployment at 20:30 UTC on Tue 24 Nov is on Wed 25 Nov for a viewer in Kolkata,
    shown 02:00 IST with UTC on hover; the window too reads in IST (one zone on the page),
    its rule in New York time on hover."""

    deployed = TicketFactory(
        author=author,
        status=TicketStatus.COMPLETED,
        deployed_at=dt.datetime(2026, 11, 24, 20, 30, tzinfo=dt.UTC),
    )
    client = login(author.username)
    client.post("/settings/timezone/", {"timezone": "Asia/Kolkata"})
    page = client.get("/calendar/").content.decode()
    wednesday = page[page.index('data-date="2026-11-25"') : page.index('data-date="2026-11-26"')]
    assert f"#{deployed.pk} {deployed.title}" in wednesday
    assert (
        'deployed <time datetime="2026-11-24T20:30:00Z" title="2026-11-24 20:30 UTC">'
        "2026-11-25 02:00 IST</time> (Completed)" in wednesday
    )
    thursday = page[page.index('data-date="2026-11-26"') : page.index('data-date="2026-11-27"')]
    window = thursday[thursday.index('data-kind="window"') :].split("</li>")[0]
    assert "2026-11-26 12:30 IST \u2013 14:30 IST" in visible_text(window)
    assert "EST" not in visible_text(window)
    assert "(Tue/Thu 02:00\u201304:00 America/New_York)" in window  # the rule, on hover
    assert "every day and time in your zone, Asia/Kolkata" in page


@time_machine.travel(THU_OPEN + dt.timedelta(hours=12), tick=False)
def test_the_feed_shows_the_past_weeks_deployments(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    env = Environment.objects.get(name="prod")
    deployed = TicketFactory(
        environment=env,
        author=author,
        status=TicketStatus.COMPLETED,
        deployed_at=THU_OPEN + dt.timedelta(minutes=20),
    )
    long_ago = TicketFactory(
        environment=env,
        author=author,
        status=TicketStatus.COMPLETED,
        deployed_at=THU_OPEN - dt.timedelta(days=30),
    )
    client = login("opal")
    client.post("/calendar/feed-token/")
    token = CalendarFeedToken.objects.get(user=operations).token
    cal = icalendar.Calendar.from_ical(Client().get(f"/calendar/prod.ics?token={token}").content)
    summaries = {str(e["summary"]): e for e in cal.walk("VEVENT")}
    event = summaries[f"deployed: #{deployed.pk} {deployed.title}"]
    assert event.decoded("dtstart") == THU_OPEN + dt.timedelta(minutes=20)
    assert str(event["categories"].cats[0]) == "deployed"
    assert not any(str(s).endswith(long_ago.title) for s in summaries)
