"""``{{ role|role_label }}``, ``{{ name|human_label }}``: machine names as people read them
(deployments.lib.presentation), so ``tech_lead`` or ``smoke_tests`` never shows raw."""

from __future__ import annotations

from django import template
from django.urls import reverse

from deployments.lib import presentation

register = template.Library()


@register.filter
def role_label(value: object) -> str:
    return presentation.role_label(str(value))


@register.filter
def human_label(value: object) -> str:
    return presentation.human_label(str(value))


@register.filter
def run_url(value: object) -> str:
    """The run page of a run id as recorded in an audit event ("" when it is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return ""
    return reverse("run_detail", args=[int(value)])
