"""The API tokens page: every user lists, creates (shown once) and revokes their own keys."""

from __future__ import annotations

from typing import Any

from allauth.core.exceptions import ReauthenticationRequired
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from deployments.lib import stepup
from deployments.models import ApiKey, ApiKeyScope
from deployments.services import InputError
from deployments.services.apikeys import MAX_EXPIRY_DAYS, NAME_MAX, api_key_create, api_key_revoke


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX, help_text="What will use it, e.g. “GitHub Actions” or “laptop”."
    )
    scope = forms.ChoiceField(
        choices=ApiKeyScope.choices,
        initial=ApiKeyScope.CI,
        help_text="CI keys may read, file tickets, plan and post checks; never approve, "
        "reject, deploy or cancel.",
    )
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=90,
        help_text="Leave empty for a key that never expires.",
    )


def _me(request: HttpRequest) -> Any:
    """The signed-in user (login_required has ruled out the anonymous one)."""
    return request.user


def _own_key(request: HttpRequest, pk: int) -> ApiKey:
    """One of the caller's keys, or 404 (others' keys do not exist for them)."""
    try:
        return ApiKey.objects.get(pk=pk, user=_me(request))
    except ApiKey.DoesNotExist:
        raise Http404("No such API key") from None


@login_required
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "deployments/tokens/list.html",
        {"keys": ApiKey.objects.filter(user=_me(request)), "form": ApiKeyForm()},
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_new(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # A long-lived credential: only from a recently authenticated session.
        if not stepup.recently_authenticated(request):
            raise ReauthenticationRequired()
        data = form.cleaned_data
        try:
            api_key, key = api_key_create(
                actor=request.user,
                user=request.user,
                name=data["name"],
                scope=data["scope"],
                expires_days=data["expires_days"],
            )
        except InputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            # Rendered, not redirected: the key is in this one answer and nowhere else.
            return render(
                request, "deployments/tokens/created.html", {"api_key": api_key, "key": key}
            )
    return render(request, "deployments/tokens/new.html", {"form": form}, status=200)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = _own_key(request, pk)
    if request.method == "POST":
        api_key_revoke(actor=request.user, key_id=api_key.pk, user=request.user)
        messages.success(request, f"API key “{api_key.name}” ({api_key.prefix}…) revoked.")
        return redirect("token_list")
    return render(request, "deployments/tokens/revoke.html", {"api_key": api_key})
