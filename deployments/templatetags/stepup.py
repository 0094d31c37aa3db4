"""``{% stepup_purpose as purpose %}``: what the re-authentication page confirms, read from
its ``next`` (the action that asked): "approve ticket #12 “Add the read replica” (prod)"."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import Http404
from django.urls import Resolver404, resolve

from deployments.selectors import ticket_get

register = template.Library()

_VERBS = {
    "ticket_approve": "approve",
    "ticket_deploy": "deploy",
    "ticket_schedule": "schedule",
    "ticket_rollback": "open a rollback of",
    "policy_override": "override a policy of",
}


@register.simple_tag(takes_context=True)
def stepup_purpose(context: Any) -> str:
    request = context.get("request")
    if request is None:
        return ""
    target = str(request.GET.get("next", ""))
    if not target.startswith("/"):
        return ""
    try:
        match = resolve(target.split("?", 1)[0])
    except Resolver404:
        return ""
    verb = _VERBS.get(match.url_name or "")
    pk = match.kwargs.get("pk")
    if verb is None or pk is None:
        return ""
    try:
        ticket = ticket_get(request.user, int(pk))
    except (Http404, ValueError):
        return ""
    return f"{verb} ticket #{ticket.pk} “{ticket.title}” ({ticket.environment.name})"
