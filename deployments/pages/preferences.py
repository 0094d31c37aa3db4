"""The settings page: the time zone every page shows times in, and which emails arrive."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone as django_timezone
from django.views.decorators.http import require_http_methods, require_POST

from deployments import services
from deployments.lib import timezones
from deployments.lib.timezones import SESSION_KEY
from deployments.models import UserPreference
from deployments.services import accounts
from notifications import events


class PreferencesForm(forms.Form):
    timezone = forms.ChoiceField(label="Time zone", choices=())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["timezone"].choices = timezones.zone_choices(django_timezone.now())  # type: ignore[attr-defined]


class EmailPreferencesForm(forms.Form):
    email_enabled = forms.BooleanField(label="Send me email notifications", required=False)
    groups = forms.MultipleChoiceField(
        label="Email me about",
        required=False,
        choices=list(events.GROUP_LABELS.items()),
        widget=forms.CheckboxSelectMultiple,
    )


def _email_initial(user: Any) -> dict[str, Any]:
    pref = UserPreference.objects.filter(user=user).first()
    opted_out = set(pref.email_opt_out or []) if pref else set()
    return {
        "email_enabled": pref.email_enabled if pref else True,
        "groups": [g for g in events.GROUP_LABELS if g not in opted_out],
    }


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Settings page: the time zone every page shows times in, and which emails arrive."""
    current = timezones.zone_of(request.user)
    posted = request.POST if request.method == "POST" else None
    which = request.POST.get("form", "timezone") if posted else ""
    form = PreferencesForm(posted if which == "timezone" else None, initial={"timezone": current})
    email_form = EmailPreferencesForm(
        posted if which == "email" else None, initial=_email_initial(request.user)
    )
    if which == "timezone" and form.is_valid():
        zone = form.cleaned_data["timezone"]
        accounts.timezone_preference_set(actor=request.user, zone=zone, chosen=True)
        request.session[SESSION_KEY] = zone
        messages.success(request, f"Times are now shown in {zone}.")
        return redirect("preferences")
    if which == "email" and email_form.is_valid():
        services.notices.email_preferences_set(
            actor=request.user,
            email_enabled=email_form.cleaned_data["email_enabled"],
            groups=list(email_form.cleaned_data["groups"]),
        )
        messages.success(request, "Email notification settings saved.")
        return redirect("preferences")
    return render(
        request,
        "deployments/preferences/preferences.html",
        {
            "form": form,
            "email_form": email_form,
            "current": current,
            "mandatory_events": sorted(events.MANDATORY_EMAIL_EVENTS),
        },
    )


@login_required
@require_POST
def timezone_guess(request: HttpRequest) -> JsonResponse:
    """The browser's zone, sent once by static/portal.js; never overrides a chosen zone."""
    zone = request.POST.get("timezone", "")
    if not timezones.valid_zone(zone):
        return JsonResponse({"detail": "timezone: unknown time zone"}, status=400)
    pref = accounts.timezone_preference_set(actor=request.user, zone=zone, chosen=False)
    if pref is not None:
        request.session[SESSION_KEY] = zone
    return JsonResponse({"timezone": timezones.zone_of(request.user)})
