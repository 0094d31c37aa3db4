"""Server-rendered pages: thin views over the same services and selectors as the API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import policy, selectors, services
from deployments.choices import TicketStatus
from deployments.lib import uploads, validation
from deployments.lib.middleware import note_refusal_if_actor
from deployments.models import EvidenceKind
from deployments.pages.actions import (
    Done,
    page_action,
    step_up_for_sensitive_environments,
    to_ticket,
)
from deployments.pages.forms import TicketForm
from deployments.selectors.preview import ticket_preview
from deployments.selectors.windows import stale_plan_expression

log = logging.getLogger(__name__)


TICKETS_PER_PAGE = 50


@login_required
@require_GET
def ticket_list(request: HttpRequest) -> HttpResponse:
    """The tickets the user may see, newest first, 50 a page (``?page=``)."""
    environment = request.GET.get("environment", "")
    if validation.text_problem(environment) or len(environment) > 64:
        environment = ""  # a filter no environment could match: show the unfiltered list
    status = request.GET.get("status", "")
    if status and status not in TicketStatus.values:
        status = ""
    stack = request.GET.get("stack", "")
    if validation.text_problem(stack) or len(stack) > 64:
        stack = ""
    raw_page = request.GET.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 8 else 1
    page = max(page, 1)
    found = selectors.rows_at(
        selectors.ticket_list(
            request.user, environment=environment, status=status, stack=stack
        ).annotate(
            plan_stale=stale_plan_expression()  # "stale plan" beside approved and scheduled
        ),
        (page - 1) * TICKETS_PER_PAGE,
        TICKETS_PER_PAGE + 1,
    )
    tickets, more = found[:TICKETS_PER_PAGE], len(found) > TICKETS_PER_PAGE
    overdue = selectors.tickets_with_overdue_follow_ups([t.pk for t in tickets], timezone.now())
    filters = {
        k: v for k, v in (("environment", environment), ("status", status), ("stack", stack)) if v
    }
    return render(
        request,
        "deployments/tickets/list.html",
        {
            "tickets": tickets,
            "page": page,
            "prev_query": urlencode({**filters, "page": page - 1}) if page > 1 else "",
            "next_query": urlencode({**filters, "page": page + 1}) if more else "",
            "overdue_ticket_ids": overdue,
            "environments": selectors.environments_visible_to(request.user),
            "statuses": TicketStatus.choices,
            "environment": environment,
            "status": status,
            "stacks": selectors.stacks_list(),
            "stack": stack,
            "can_file": bool(selectors.environments_fileable_by(request.user)),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    environments = selectors.environments_fileable_by(request.user)
    form = TicketForm(
        request.POST or None,
        environments=environments,
        stacks=selectors.stacks_list(),
        initial={"environment": request.GET.get("environment", "dev")},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        details = any(
            e.requires_change_details for e in environments if e.name == data["environment"]
        )
        try:
            ticket = services.ticket_create(
                actor=request.user,
                data=services.TicketInput(
                    title=data["title"],
                    environment=data["environment"],
                    stack=data.get("stack") or "",
                    description=data["description"],
                    commit_sha=data["commit_sha"],
                    change_type=data["change_type"],
                    pull_request_url=data["pull_request_url"],
                    # Shown (and read) only for environments that require them.
                    risk_assessment=form.risk_assessment() if details else None,
                    rollback_plan=form.rollback_plan() if details else None,
                ),
                source="web",
            )
        except services.InputError as exc:
            field = form.field_for(exc.field)
            form.add_error(
                field, form.plain_error(exc.field, exc.message) if field else exc.message
            )
        except policy.PolicyError as exc:
            note_refusal_if_actor(request, exc)  # audited like a page action's refusal
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Ticket #{ticket.pk} filed; planning has started.")
            return redirect("ticket_detail", pk=ticket.pk)
    prod_fields = set(TicketForm.PROD_FIELDS)
    return render(
        request,
        "deployments/tickets/new.html",
        {
            "form": form,
            "environments": environments,
            "base_fields": [f for f in form if f.name not in prod_fields],
            "prod_fields": [f for f in form if f.name in prod_fields],
            "prod_envs": [e.name for e in environments if e.requires_change_details],
            "required_fields": sorted(TicketForm.DETAIL_REQUIRED),
            "preview": _preview(request, form, environments),
        },
    )


def _preview(request: HttpRequest, form: TicketForm, environments: list[Any]) -> Any:
    """The form's preview as the server sees its current values (the script refreshes it)."""
    values = form.data if form.is_bound else form.initial
    name = values.get("environment") or (environments[0].name if environments else "")
    try:
        return ticket_preview(
            request.user,
            environment=name,
            change_type=values.get("change_type") or "normal",
            answers={k.removeprefix("risk_"): v for k, v in values.items()},
            now=timezone.now(),
        )
    except validation.InputError:
        return None


@login_required
@require_GET
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The ticket page: what selectors.ticket_view says, the same view the API detail reads."""
    view = selectors.ticket_view(
        selectors.ticket_get(request.user, pk), request.user, timezone.now()
    )
    return render(
        request,
        "deployments/tickets/detail.html",
        {
            "view": view,
            "ticket": view.ticket,
            "infra_branch": settings.INFRA_BRANCH,
            "follow_ups": _with_drafts(request, view.follow_ups),
            # The upload form's limits (settings, not the ticket's).
            "evidence_limit": uploads.limit_text(),
            "evidence_max_files": settings.EVIDENCE_MAX_FILES,
            "evidence_kinds": [
                (value, label)
                for value, label in EvidenceKind.choices
                if view.evidence.is_qa or value != EvidenceKind.QA_REPORT
            ],
        },
    )


def _with_drafts(request: HttpRequest, follow_ups: list[Any]) -> list[Any]:
    """The ticket's follow-ups, each with what was typed into a refused form (shown once)."""
    for follow_up in follow_ups:
        follow_up.draft = request.session.pop(f"followup-draft-{follow_up.pk}", {})
    return follow_ups


@login_required
@require_POST
@page_action(back=to_ticket())
def ticket_plan(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    services.ticket_plan(
        ticket_id=ticket.pk,
        actor=request.user,
        reason=validation.clean_text(request.POST.get("reason", ""), "reason", 200),
    )
    return Done("A new plan has been queued; earlier approvals no longer count.")


@login_required
@require_POST
@step_up_for_sensitive_environments
@page_action(back=to_ticket())
def ticket_approve(request: HttpRequest, pk: int) -> Done:
    reviewed = request.POST.get("plan_sha256", "")
    if not reviewed:
        raise services.InputError(
            "plan_sha256", "Reload the page: the form did not say which plan you reviewed."
        )
    ticket = selectors.ticket_get(request.user, pk)
    services.approval_grant(
        ticket_id=ticket.pk,
        actor=request.user,
        comment=validation.clean_text(
            request.POST.get("comment", ""), "comment", validation.COMMENT_MAX
        ),
        # The plan the page showed: if it was replaced meanwhile, nothing is approved.
        plan_sha256=validation.clean_text(reviewed, "plan_sha256", 64),
    )
    return Done("Approved.")


@login_required
@require_POST
@page_action(back=to_ticket())
def ticket_reject(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    services.ticket_reject(
        ticket_id=ticket.pk,
        actor=request.user,
        reason=validation.clean_text(
            request.POST.get("reason", ""), "reason", validation.COMMENT_MAX
        ),
    )
    return Done("Rejected.")


@login_required
@require_POST
@step_up_for_sensitive_environments
@page_action(back=to_ticket())
def ticket_deploy(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    services.ticket_deploy(ticket_id=ticket.pk, actor=request.user)
    return Done("Deploy started: Terraform is applying the approved plan.")


@login_required
@require_POST
@page_action(back=to_ticket())
def ticket_cancel(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    services.ticket_cancel(
        ticket_id=ticket.pk,
        actor=request.user,
        reason=validation.clean_text(
            request.POST.get("reason", ""), "reason", validation.COMMENT_MAX
        ),
    )
    return Done("Ticket cancelled.")


@login_required
@require_GET
def ticket_cancel_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancelling asks first: what it stops, a reason, and a button that says so."""
    view = selectors.ticket_view(
        selectors.ticket_get(request.user, pk), request.user, timezone.now()
    )
    return render(
        request, "deployments/tickets/cancel_confirm.html", {"view": view, "ticket": view.ticket}
    )
