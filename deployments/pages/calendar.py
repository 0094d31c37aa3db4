"""The change calendar page and the per-environment iCalendar feeds."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from deployments import selectors
from deployments.lib import stepup
from deployments.models import CalendarFeedToken, Environment
from deployments.selectors.calendar import Entry, calendar_entries
from deployments.services import schedules

FEED_WEEKS = 8


@dataclass
class Day:
    date: dt.date
    entries: list[Entry] = field(default_factory=list)
    today: bool = False


def _parse_day(value: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return default


@login_required
@require_GET
def calendar_view(request: HttpRequest) -> HttpResponse:
    """Week (default) or month view. Days are the viewer's (their zone); window and freeze
    times are shown in their environment's zone with UTC, scheduled and deployed tickets in
    the viewer's zone with UTC on hover."""
    viewer = timezone.get_current_timezone()
    today = timezone.now().astimezone(viewer).date()
    view = request.GET.get("view", "week")
    if view not in ("week", "month"):
        view = "week"
    # Without a start: the week (or month) of the next change window, which is what
    # people open the calendar to find.
    opening = (
        None
        if request.GET.get("start")
        else selectors.next_window_opening(request.user, timezone.now())
    )
    default = opening.astimezone(viewer).date() if opening is not None else today
    anchor = _parse_day(request.GET.get("start", ""), default)
    anchor = max(min(anchor, dt.date(2100, 1, 1)), dt.date(2000, 1, 1))
    if view == "week":
        first = anchor - dt.timedelta(days=anchor.weekday())
        last = first + dt.timedelta(days=7)
        prev_start, next_start = first - dt.timedelta(days=7), last
    else:
        month = anchor.replace(day=1)
        following = (month + dt.timedelta(days=32)).replace(day=1)
        first = month - dt.timedelta(days=month.weekday())
        last = following + dt.timedelta(days=(7 - following.weekday()) % 7)
        prev_start = (month - dt.timedelta(days=1)).replace(day=1)
        next_start = following
    start = dt.datetime.combine(first, dt.time(0), tzinfo=viewer)
    end = dt.datetime.combine(last, dt.time(0), tzinfo=viewer)
    days = {
        first + dt.timedelta(days=i): Day(first + dt.timedelta(days=i))
        for i in range((last - first).days)
    }
    for day in days.values():
        day.today = day.date == today
    for entry in calendar_entries(request.user, start, end):
        key = entry.starts.astimezone(viewer).date()
        if key in days:
            days[key].entries.append(entry)
    ordered = list(days.values())
    weeks = [ordered[i : i + 7] for i in range(0, len(ordered), 7)]
    token = CalendarFeedToken.objects.filter(user_id=request.user.pk or 0).first()
    feeds = [
        {
            "env": env,
            "url": request.build_absolute_uri(
                reverse("calendar_feed", args=[env.name]) + f"?token={token.token}"
            )
            if token
            else "",
        }
        for env in selectors.environments_visible_to(request.user)
    ]
    return render(
        request,
        "deployments/calendar/calendar.html",
        {
            "view": view,
            "weeks": weeks,
            "first": first,
            "last": last - dt.timedelta(days=1),
            "prev_start": prev_start,
            "next_start": next_start,
            "feeds": feeds,
            "has_token": token is not None,
            "viewer_zone": str(viewer),
            "today": today,
            "opening": opening,
        },
    )


@login_required
@require_POST
def calendar_token_rotate(request: HttpRequest) -> HttpResponse:
    """Create or rotate the user's feed token (old feed URLs stop working), audited."""
    created = schedules.calendar_token_rotate(actor=request.user)
    messages.success(
        request,
        "Your calendar feed links are ready."
        if created
        else "New feed links: the old ones no longer work.",
    )
    return redirect("calendar")


@require_GET
def calendar_feed(request: HttpRequest, env: str) -> HttpResponse:
    """The iCalendar feed of one environment: its windows over the next weeks (with TZID),
    its freezes and the scheduled tickets the token's owner may see. 404 for a bad token; 403
    while the owner is a lead who must enrol two-factor authentication (deployments.lib.stepup)."""
    token = request.GET.get("token", "")
    if not token or len(token) > 64:
        raise Http404
    owner = (
        CalendarFeedToken.objects.filter(token=token, user__is_active=True)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise Http404
    user = owner.user
    if stepup.must_enrol_mfa(user):
        # The feed's token is a credential like an API key: no lead reads by it unenrolled.
        return HttpResponse(
            stepup.MFA_REQUIRED_MESSAGE, status=403, content_type="text/plain; charset=utf-8"
        )
    environment = next((e for e in selectors.environments_visible_to(user) if e.name == env), None)
    if environment is None:
        raise Http404
    return HttpResponse(
        feed_ics(user, environment, timezone.now(), base_url=request.build_absolute_uri("/")),
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{environment.name}.ics"'},
    )


def feed_ics(user: Any, env: Environment, now: dt.datetime, *, base_url: str = "") -> bytes:
    """The .ics body: windows, freezes, scheduled tickets and the past week's deployments;
    every event carries its environment's TZID (VTIMEZONE included) and links to its ticket
    (``base_url``: the portal's address as the subscriber reached it)."""
    zone = ZoneInfo(env.window_timezone or "UTC")
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Change Control Portal//calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{env.name} changes")
    cal.add("x-wr-timezone", str(zone))
    start = now - dt.timedelta(days=7)
    end = now + dt.timedelta(weeks=FEED_WEEKS)
    for entry in calendar_entries(user, start, end):
        if entry.environment != env.name:
            continue
        event = icalendar.Event()
        uid_part = f"{entry.kind}|{entry.starts.astimezone(dt.UTC).isoformat()}|{entry.title}"
        digest = hashlib.sha256(uid_part.encode()).hexdigest()[:24]
        event.add("uid", f"{digest}-{entry.kind}-{env.name}@changecontrol")
        summary = f"deployed: {entry.title}" if entry.kind == "deployed" else entry.title
        if entry.stale:
            summary = f"STALE PLAN: {summary}"
        event.add("summary", summary + (f" ({entry.conflict})" if entry.conflict else ""))
        event.add("description", entry.text)
        event.add("dtstart", entry.starts.astimezone(zone))
        event.add("dtend", (entry.ends or entry.starts + dt.timedelta(minutes=30)).astimezone(zone))
        event.add("dtstamp", now)
        event.add("categories", [entry.kind])
        if entry.url:
            event.add("url", base_url.rstrip("/") + entry.url)
        cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
