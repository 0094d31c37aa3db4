"""Issue 22: emails show times in each reader's zone, and message links follow the
configured base URL (a local run's follow PORT)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from deployments.models import Environment, FollowUp, UserPreference
from deployments.services import notices
from notifications import times
from notifications.models import Notification
from tests.helpers.factories import TicketFactory
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.django_db

DUE = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def test_a_stamp_renders_in_the_zone_asked() -> None:
    text = f"due by {times.stamp(DUE)}."
    assert times.render(text) == "due by Tue 01 Dec 2026 14:30 UTC."
    assert times.render(text, "America/New_York") == "due by Tue 01 Dec 2026 09:30 EST (14:30 UTC)."
    assert times.render(text, "Asia/Kolkata") == "due by Tue 01 Dec 2026 20:00 IST (14:30 UTC)."
    assert times.render(text, "Not/AZone") == "due by Tue 01 Dec 2026 14:30 UTC."


def test_each_reader_gets_the_follow_up_due_time_in_their_own_zone(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    UserPreference.objects.create(user=tech_lead, timezone="America/New_York")
    UserPreference.objects.create(user=devops_lead, timezone="Europe/Paris")
    ticket = TicketFactory(environment=Environment.objects.get(name="prod"), author=author)
    follow_up = FollowUp.objects.create(ticket=ticket, kind="post_mortem", due_at=DUE)
    notices.followup_due(ticket, follow_up)
    bodies = {
        n.recipient.username: n.body
        for n in Notification.objects.filter(event="followup.due", recipient__isnull=False)
    }
    assert "due by Tue 01 Dec 2026 09:30 EST (14:30 UTC)" in bodies["tess"]
    assert "due by Tue 01 Dec 2026 15:30 CET (14:30 UTC)" in bodies["otto"]
    assert all("[[t:" not in body for body in bodies.values())


@override_settings(PORTAL_BASE_URL="https://portal.example.org/")
def test_links_are_built_from_the_configured_base_url(author: User) -> None:
    ticket = TicketFactory(author=author)
    assert notices.ticket_url(ticket) == f"https://portal.example.org/tickets/{ticket.pk}/"


def _base_url(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "PORTAL_BASE_URL")}
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'changecontrol.settings'); django.setup(); from django.conf import settings; "
        "print(settings.PORTAL_BASE_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_a_local_run_links_to_its_own_port() -> None:
    assert _base_url(PORT="8123") == "http://127.0.0.1:8123"
    assert _base_url() == "http://127.0.0.1:8000"
    assert _base_url(PORT="8123", PORTAL_BASE_URL="https://cc.example.org") == (
        "https://cc.example.org"
    )
