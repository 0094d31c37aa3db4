"""Readable times: the usertime filter, the per-user zone, the settings page, the browser guess."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import Client
from django.utils import timezone

from deployments.models import UserPreference
from deployments.templatetags.portal_time import usertime
from tests.helpers.factories import TicketFactory


def render_in(zone: str, moment: dt.datetime) -> str:
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        return str(usertime(moment))


@pytest.mark.parametrize(
    ("moment", "zone", "local"),
    [
        # New York, spring forward 2026-03-08 02:00 EST → 03:00 EDT.
        (
            dt.datetime(2026, 3, 8, 6, 30, tzinfo=dt.UTC),
            "America/New_York",
            "2026-03-08 01:30:00 EST",
        ),
        (
            dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC),
            "America/New_York",
            "2026-03-08 03:30:00 EDT",
        ),
        # Fall back 2026-11-01: 01:30 happens twice.
        (
            dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC),
            "America/New_York",
            "2026-11-01 01:30:00 EDT",
        ),
        (
            dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC),
            "America/New_York",
            "2026-11-01 01:30:00 EST",
        ),
        # South of the equator: Sydney leaves DST on 2026-04-05.
        (
            dt.datetime(2026, 4, 4, 15, 0, tzinfo=dt.UTC),
            "Australia/Sydney",
            "2026-04-05 02:00:00 AEDT",
        ),
        (
            dt.datetime(2026, 4, 4, 16, 30, tzinfo=dt.UTC),
            "Australia/Sydney",
            "2026-04-05 02:30:00 AEST",
        ),
        # A 30-minute offset.
        (dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC), "Asia/Kolkata", "2026-07-01 05:30:00 IST"),
    ],
)
def test_usertime_renders_local_text_with_utc_on_hover(
    moment: dt.datetime, zone: str, local: str
) -> None:
    html = render_in(zone, moment)
    utc_iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert html == (
        f'<time datetime="{utc_iso}" title="{moment:%Y-%m-%d %H:%M:%S} UTC">{local}</time>'
    )


def test_usertime_short_style_and_empty_values() -> None:
    moment = dt.datetime(2026, 1, 15, 7, 0, tzinfo=dt.UTC)
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        out = Template("{% load portal_time %}{{ t|usertime:'short' }}|{{ none|usertime }}").render(
            Context({"t": moment, "none": None})
        )
    assert (
        out == '<time datetime="2026-01-15T07:00:00Z" title="2026-01-15 07:00 UTC">'
        "2026-01-15 02:00 EST</time>|"
    )


@pytest.mark.django_db
def test_pages_show_times_in_the_viewers_zone(author: User) -> None:
    ticket = TicketFactory(author=author)
    ticket.created_at = dt.datetime(2026, 7, 9, 12, 0, tzinfo=dt.UTC)
    ticket.save(update_fields=["created_at"])
    type(ticket).objects.filter(pk=ticket.pk).update(created_at=ticket.created_at)
    client = Client()
    client.force_login(author)
    # No zone yet: UTC, and the page offers the browser's zone to static/timezone.js.
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "2026-07-09 12:00:00 UTC</time>" in page
    assert 'id="tz-guess-form"' in page

    guessed = client.post("/settings/timezone/", {"timezone": "Asia/Kolkata"})
    assert guessed.json() == {"timezone": "Asia/Kolkata"}
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "2026-07-09 17:30:00 IST</time>" in page
    assert 'id="tz-guess-form"' not in page
    assert "2026-07-09 17:30 IST</time>" in client.get("/tickets/").content.decode()

    # A choice on the settings page wins over any later browser guess.
    settings_page = client.get("/settings/")
    assert (
        settings_page.status_code == 200
        and 'id="preferences-form"' in settings_page.content.decode()
    )
    saved = client.post("/settings/", {"timezone": "America/New_York"}, follow=True)
    assert "Times are now shown in America/New_York" in saved.content.decode()
    client.post("/settings/timezone/", {"timezone": "Europe/Paris"})
    assert UserPreference.objects.get(user=author).timezone == "America/New_York"
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "2026-07-09 08:00:00 EDT</time>" in page


@pytest.mark.django_db
def test_unknown_zones_are_refused(author: User) -> None:
    client = Client()
    client.force_login(author)
    assert client.post("/settings/timezone/", {"timezone": "Mars/Olympus"}).status_code == 400
    refused = client.post("/settings/", {"timezone": "Mars/Olympus"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not UserPreference.objects.filter(user=author).exists()


@pytest.mark.django_db
def test_settings_is_linked_from_the_header(author: User) -> None:
    client = Client()
    client.force_login(author)
    assert 'href="/settings/" id="nav-settings"' in client.get("/").content.decode()


def test_no_template_prints_a_clock_time_without_the_viewer_zone_and_utc() -> None:
    """Every time of day on a page goes through ``usertime`` (viewer's zone, UTC on hover):
    a ``|date:`` format with hours or minutes in a template would bypass it."""
    import re
    from pathlib import Path

    from django.conf import settings

    offenders = []
    for root in settings.TEMPLATES[0]["DIRS"]:
        for path in Path(root).rglob("*.html"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for fmt in re.findall(r"\|date:[\"']([^\"']*)[\"']", line):
                    if fmt != "c" and re.search(r"[HhGgiAaPT]", fmt):
                        offenders.append(f"{path.name}:{number}: |date:{fmt!r}")
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.usefixtures("without_promotion_gate")
def test_a_refusal_names_the_next_window_in_the_viewers_zone(
    author: User, tech_lead: User, devops_lead: User, operations: User
) -> None:
    """One zone per panel: the ticket page's reasons say the next window in the reader's
    zone (the rule's own zone on hover); the rule itself stays in the environment's zone."""
    import time_machine

    from tests.helpers.pages import signed_in
    from tests.helpers.tickets import approved

    ticket = approved("prod", author, tech_lead, devops_lead)
    client = signed_in(operations)
    with time_machine.travel(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC), tick=False):
        utc_page = client.get(f"/tickets/{ticket.pk}/").content.decode()
        UserPreference.objects.create(user=operations, timezone="Asia/Kolkata")
        client = signed_in(operations)  # a new session reads the zone again
        page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    why = page.split('id="deploy-why">', 1)[1].split("</p>", 1)[0]
    assert "(Tue/Thu 02:00\u201304:00 America/New_York)" in why  # the rule, in its zone
    assert (
        'the next window opens <time datetime="2026-11-26T07:00:00Z" '
        'title="Thu 26 Nov 02:00 EST (07:00 UTC)">Thu 26 Nov 12:30 IST (07:00 UTC)</time>'
    ) in why
    utc_why = utc_page.split('id="deploy-why">', 1)[1].split("</p>", 1)[0]
    assert 'title="Thu 26 Nov 02:00 EST (07:00 UTC)">Thu 26 Nov 07:00 UTC</time>' in utc_why
