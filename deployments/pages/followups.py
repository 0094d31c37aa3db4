"""Pages of follow-ups (complete a review) and of personal settings (time zone)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from deployments import policy, selectors, services
from deployments.lib import timezones, validation
from deployments.lib.middleware import note_refusal_if_actor
from deployments.lib.timezones import SESSION_KEY
from deployments.models import UserPreference
from notifications import events


@login_required
@require_POST
def follow_up_complete(request: HttpRequest, pk: int, fid: int) -> HttpResponse:
    """The review form on the ticket page (works without JavaScript)."""
    ticket = selectors.ticket_get(request.user, pk)
    follow_up = ticket.follow_ups.filter(pk=fid).first()
    if follow_up is None:
        raise Http404("no such follow-up on this ticket")
    fields = ("what_happened", "impact", "root_cause", "actions")
    try:
        services.follow_up_complete(
            follow_up_id=follow_up.pk,
            actor=request.user,
            **{
                name: validation.clean_text(
                    request.POST.get(name, ""), name, validation.DESCRIPTION_MAX
                )
                for name in fields
            },
        )
    except policy.PolicyError as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    except services.InputError as exc:
        messages.error(request, f"{follow_up.get_kind_display()} not saved: {exc.message}")
        # Keep what was typed, so nothing is lost on a refusal.
        request.session[f"followup-draft-{follow_up.pk}"] = {
            name: request.POST.get(name, "")[: validation.DESCRIPTION_MAX] for name in fields
        }
    else:
        request.session.pop(f"followup-draft-{follow_up.pk}", None)
        messages.success(request, f"{follow_up.get_kind_display()} completed.")
    return redirect(f"/tickets/{ticket.pk}/#follow-ups")


class PreferencesForm(forms.Form):
    timezone = forms.ChoiceField(label="Time zone", choices=())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["timezone"].choices = [(z, z) for z in timezones.available_zones()]  # type: ignore[attr-defined]


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
        timezones.preference_set(actor=request.user, zone=zone, chosen=True)
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
        "deployments/preferences.html",
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
    pref = timezones.preference_set(actor=request.user, zone=zone, chosen=False)
    if pref is not None:
        request.session[SESSION_KEY] = zone
    return JsonResponse({"timezone": timezones.zone_of(request.user)})
