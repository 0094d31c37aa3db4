"""Pages for scheduling and the change calendar, and the per-environment iCalendar feeds."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import policy, selectors, services, stepup
from .choices import TicketStatus
from .middleware import note_refusal_if_actor
from .models import CalendarFeedToken, Environment
from .selectors_windows import freezes_by_environment, schedule_conflicts
from .services import schedules
from .views import _post_action, step_up_for_sensitive_environments

FEED_WEEKS = 8


# --- scheduling from the ticket page ------------------------------------------------


def _parse_local(value: str, zone: str, field: str = "at") -> dt.datetime:
    """A datetime-local value ('2026-11-26T02:30') read in the environment's zone."""
    try:
        naive = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise services.InputError(field, "give a date and time, e.g. 2026-11-26T02:30") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ZoneInfo(zone))


@login_required
@require_POST
@step_up_for_sensitive_environments
def ticket_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    next_window = request.POST.get("next_window") == "1"
    raw_at = request.POST.get("at", "")

    ticket = selectors.ticket_get(request.user, pk)
    zone = ticket.environment.window_timezone or "UTC"
    try:
        at = None if next_window else _parse_local(raw_at, zone)
        done = schedules.ticket_schedule(
            ticket_id=ticket.pk, actor=request.user, at=at, next_window=next_window
        )
    except policy.PolicyError as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    except services.InputError as exc:
        messages.error(request, exc.message)
    else:
        assert done.scheduled_for is not None
        when = policy.format_in_zone(done.scheduled_for, zone)
        messages.success(request, f"Scheduled for {when}: it starts by itself in the window.")
    return redirect("ticket_detail", pk=ticket.pk)


@login_required
@require_POST
@step_up_for_sensitive_environments
def ticket_unschedule(request: HttpRequest, pk: int) -> HttpResponse:
    return _post_action(
        request,
        pk,
        lambda t: schedules.ticket_unschedule(ticket_id=t.pk, actor=request.user),
        "Unscheduled: the ticket is approved and will not start by itself.",
    )


# --- freezes, from the environments page --------------------------------------------


def _environment_for(request: HttpRequest, name: str) -> Environment:
    """An environment whose policy the user may read, or 404."""
    for env in selectors.environments_visible_to(request.user):
        if env.name == name:
            return env
    raise Http404("No such environment")


@login_required
@require_POST
def freeze_declare(request: HttpRequest, name: str) -> HttpResponse:
    """Declare a freeze; times are the environment's wall clock (datetime-local fields)."""
    env = _environment_for(request, name)
    zone = env.window_timezone or "UTC"
    try:
        starts_at = _parse_local(request.POST.get("starts_at", ""), zone, field="starts_at")
        ends_at = _parse_local(request.POST.get("ends_at", ""), zone, field="ends_at")
        freeze = schedules.freeze_declare(
            actor=request.user,
            environment=env,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=request.POST.get("reason", ""),
        )
    except policy.PolicyError as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    except services.InputError as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
    else:
        messages.success(
            request,
            f"{env.name} is frozen from {policy.format_in_zone(freeze.starts_at, zone)} until "
            f"{policy.format_in_zone(freeze.ends_at, zone)}.",
        )
    return redirect(f"{reverse('environment_list')}#freezes-{env.name}")


@login_required
@require_POST
def freeze_lift(request: HttpRequest, name: str, fid: int) -> HttpResponse:
    """Lift a freeze (ends now, or withdrawn before it starts), saying why."""
    env = _environment_for(request, name)
    if not env.freezes.filter(pk=fid).exists():
        raise Http404("No such freeze")
    try:
        kept = schedules.freeze_lift(
            actor=request.user, freeze_id=fid, reason=request.POST.get("reason", "")
        )
    except policy.PolicyError as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    except services.InputError as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
    else:
        messages.success(
            request,
            f"The {env.name} freeze is lifted." if kept else f"The {env.name} freeze is withdrawn.",
        )
    return redirect(f"{reverse('environment_list')}#freezes-{env.name}")


# --- the change calendar -------------------------------------------------------------


@dataclass
class Entry:
    """One thing on the calendar."""

    kind: str  # window | freeze | scheduled | deployed
    starts: dt.datetime
    ends: dt.datetime | None
    environment: str
    title: str
    text: str
    url: str = ""
    conflict: str = ""
    status: str = ""  # a deployed ticket's status now


@dataclass
class Day:
    date: dt.date
    entries: list[Entry] = field(default_factory=list)
    today: bool = False


def _when(moment: dt.datetime, zone: str) -> str:
    return policy.format_in_zone(moment, zone)


def calendar_entries(user: Any, start: dt.datetime, end: dt.datetime) -> list[Entry]:
    """Windows, freezes, scheduled tickets (with conflicts) and past deployments in
    [start, end), for the environments and tickets this user may see."""
    entries: list[Entry] = []
    envs = selectors.environments_visible_to(user)
    visible = selectors.tickets_visible_to(user)
    # One query per kind of entry for every environment (not one per environment).
    env_ids = [env.pk for env in envs]
    freezes = freezes_by_environment(env_ids, start, end)
    scheduled_all = list(
        visible.filter(
            environment_id__in=env_ids,
            status=TicketStatus.SCHEDULED,
            scheduled_for__gte=start,
            scheduled_for__lt=end,
        ).order_by("scheduled_for", "id")
    )
    deployed_all = list(
        visible.filter(
            environment_id__in=env_ids, deployed_at__gte=start, deployed_at__lt=end
        ).order_by("deployed_at", "id")
    )
    for env in envs:
        zone = env.window_timezone or "UTC"
        window = policy.Window.of(env)
        for opens, closes in policy.window_occurrences(env, start, end):
            entries.append(
                Entry(
                    "window",
                    opens,
                    closes,
                    env.name,
                    f"{env.name} change window",
                    f"{_when(opens, zone)} \u2013 {_when(closes, zone)}"
                    + (f" ({window.describe()})" if window else ""),
                )
            )
        for freeze in freezes[env.pk]:
            entries.append(
                Entry(
                    "freeze",
                    freeze.starts_at,
                    freeze.ends_at,
                    env.name,
                    f"{env.name} freeze: {freeze.reason}",
                    f"{_when(freeze.starts_at, zone)} \u2013 {_when(freeze.ends_at, zone)}",
                )
            )
        scheduled = [t for t in scheduled_all if t.environment_id == env.pk]
        conflicted: dict[int, str] = {}
        for conflict in schedule_conflicts(scheduled):
            order = ", ".join(f"#{t.pk}" for t in conflict.tickets)
            for t in conflict.tickets:
                conflicted[t.pk] = (
                    f"conflict: {len(conflict.tickets)} tickets in this window, "
                    f"run in order {order}"
                )
        for ticket in scheduled:
            assert ticket.scheduled_for is not None
            entries.append(
                Entry(
                    "scheduled",
                    ticket.scheduled_for,
                    None,
                    env.name,
                    f"#{ticket.pk} {ticket.title}",
                    f"scheduled {_when(ticket.scheduled_for, zone)}",
                    reverse("ticket_detail", args=[ticket.pk]),
                    conflicted.get(ticket.pk, ""),
                )
            )
        for ticket in (t for t in deployed_all if t.environment_id == env.pk):
            assert ticket.deployed_at is not None
            entries.append(
                Entry(
                    "deployed",
                    ticket.deployed_at,
                    None,
                    env.name,
                    f"#{ticket.pk} {ticket.title}",
                    f"deployed {_when(ticket.deployed_at, zone)} ({ticket.get_status_display()})",
                    reverse("ticket_detail", args=[ticket.pk]),
                    status=ticket.get_status_display(),
                )
            )
    return sorted(entries, key=lambda e: (e.starts, e.kind, e.title))


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
    anchor = _parse_day(request.GET.get("start", ""), today)
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
        "deployments/calendar.html",
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
        },
    )


@login_required
@require_POST
def calendar_token_rotate(request: HttpRequest) -> HttpResponse:
    """Create or rotate the user's feed token (old feed URLs stop working), audited."""
    with transaction.atomic():
        token, created = CalendarFeedToken.objects.select_for_update().get_or_create(
            user_id=request.user.pk
        )
        if not created:
            from .models.freezes import new_feed_token

            token.token = new_feed_token()
            token.save(update_fields=["token", "created_at"])
        services.audit_record(
            actor=request.user,
            action="calendar.feed_token." + ("create" if created else "rotate"),
            data={},
        )
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
    while the owner is a lead who must enrol two-factor authentication (deployments.stepup)."""
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
