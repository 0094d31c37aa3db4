"""Server-rendered pages: thin views over the same services and selectors as the API."""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import urlencode

from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import health, policy, selectors, services, stepup, validation, views_home
from .choices import ACTIVE_RUN_STATUSES, TicketStatus
from .evidence_views import evidence_context
from .forms import TicketForm
from .middleware import note_refusal_if_actor
from .models import PullRequest
from .selectors_windows import environment_window_state
from .views_monitoring import monitoring_context

log = logging.getLogger(__name__)


def portal_context(request: HttpRequest) -> dict[str, Any]:
    """Template context shared by every page."""
    return {
        "portal_embedded": settings.EMBEDDED,
        # TERRAFORM_SANDBOX=none: every page says so (docs/security.md).
        "terraform_unisolated": settings.TERRAFORM_SANDBOX == "none",
        "user_roles": sorted(selectors.user_roles(request.user)),
        # Called by the template only where the nav shows it (see views_home.badge).
        "queue_badge": functools.partial(views_home.badge, request),
        "may_see_notifications": policy.may_see_notification_log(
            selectors.user_roles(request.user),
            superuser=bool(getattr(request.user, "is_superuser", False)),
        ),
        "may_read_audit": selectors.may_read_audit(request.user),
    }


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
    raw_page = request.GET.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 8 else 1
    page = max(page, 1)
    found = selectors.rows_at(
        selectors.ticket_list(request.user, environment=environment, status=status),
        (page - 1) * TICKETS_PER_PAGE,
        TICKETS_PER_PAGE + 1,
    )
    tickets, more = found[:TICKETS_PER_PAGE], len(found) > TICKETS_PER_PAGE
    overdue = selectors.tickets_with_overdue_follow_ups([t.pk for t in tickets], timezone.now())
    filters = {k: v for k, v in (("environment", environment), ("status", status)) if v}
    return render(
        request,
        "deployments/ticket_list.html",
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
            form.add_error(field, exc.message if field else f"{exc.field}: {exc.message}")
        except policy.PolicyError as exc:
            note_refusal_if_actor(request, exc)
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Ticket #{ticket.pk} filed; planning has started.")
            return redirect("ticket_detail", pk=ticket.pk)
    prod_fields = set(TicketForm.PROD_FIELDS)
    return render(
        request,
        "deployments/ticket_new.html",
        {
            "form": form,
            "environments": environments,
            "base_fields": [f for f in form if f.name not in prod_fields],
            "prod_fields": [f for f in form if f.name in prod_fields],
            "prod_envs": [e.name for e in environments if e.requires_change_details],
        },
    )


@login_required
@require_GET
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get(request.user, pk)
    # Each run's log is up to RUN_LOG_MAX_BYTES: the page carries only its last page.
    runs = list(ticket.runs.all())  # ticket_get: each with its log's last page only
    live_run = next((r for r in runs if r.status in ACTIVE_RUN_STATUSES), None)
    shown_run = live_run or (runs[0] if runs else None)
    shown_page = selectors.run_log_page(shown_run) if shown_run else None
    actions = selectors.ticket_actions(ticket, request.user, timezone.now())
    choice = selectors.rollback_choice(ticket) if actions["rollback"].relevant else None
    # Other tickets this page names, through the viewer's visibility (never a hidden one).
    shown = selectors.visible_ticket_ids(
        request.user,
        [
            ticket.rollback_of_id,
            ticket.rollback_target.ticket_id if ticket.rollback_target else None,
        ],
    )
    return render(
        request,
        "deployments/ticket_detail.html",
        {
            "ticket": ticket,
            "runs": runs,
            "live_run": live_run,
            "shown_run": shown_run,
            "shown_log": shown_page.text if shown_page else "",
            "shown_page": shown_page,
            "plan": ticket.current_plan,
            "pull_request": PullRequest.for_commit(ticket.commit_sha),
            "events": selectors.audit_for_ticket(ticket),
            "is_live": live_run is not None,
            "approval": services.approval_summary(ticket),
            "approvals": selectors.ticket_approvals(ticket),
            "rejections": ticket.rejections.select_related("rejected_by"),
            "actions": actions,
            "rollback_choice": choice,
            "rollback_good": selectors.known_good_for(
                request.user, choice.target, ticket.environment
            )
            if choice
            else None,
            "shown_ticket_ids": shown,
            # A re-plan that voids approvals asks why (recorded on them).
            "replan_voids": policy.replan_voids_approvals(
                ticket, selectors.standing_votes(ticket), now=timezone.now()
            ),
            "step_up": ticket.environment.step_up_auth,
            "infra_branch": settings.INFRA_BRANCH,
            "follow_ups": _follow_ups_with_drafts(request, ticket),
            "may_complete_follow_ups": policy.may_complete_follow_ups(
                selectors.user_roles(request.user), superuser=request.user.is_superuser
            ),
            "now": timezone.now(),
            "rollback_mode_now": policy.effective_rollback_mode(ticket, timezone.now()),
            "risk": ticket.risk or {},
            "last_known_good": selectors.known_good_for(
                request.user, selectors.ticket_last_known_good(ticket), ticket.environment
            ),
            **evidence_context(ticket, request.user),
            **monitoring_context(ticket, request.user, timezone.now()),
        },
    )


def _follow_ups_with_drafts(request: HttpRequest, ticket: Any) -> list[Any]:
    """The ticket's follow-ups, each with what was typed into a refused form (shown once)."""
    follow_ups = selectors.follow_ups_of(ticket)
    for follow_up in follow_ups:
        follow_up.draft = request.session.pop(f"followup-draft-{follow_up.pk}", {})  # type: ignore[attr-defined]
    return follow_ups


def _post_action(request: HttpRequest, pk: int, call: Any, done: str) -> HttpResponse:
    ticket = selectors.ticket_get(request.user, pk)
    try:
        call(ticket)
    except policy.PolicyError as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    except services.InputError as exc:
        # Boundary checks say "must ..." about a field: name it ("reason must be at most ...").
        text = f"{exc.field} {exc.message}" if exc.message.startswith("must") else exc.message
        messages.error(request, text)
    else:
        messages.success(request, done)
    return redirect("ticket_detail", pk=ticket.pk)


def step_up_for_sensitive_environments(view: Any) -> Any:
    """Ask for the password again before approving or deploying where the environment
    says so (prod), by the one rule in deployments.stepup (the API asks the same).
    allauth's middleware stashes the POST and replays it after re-authentication."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, pk: int) -> HttpResponse:
        ticket = selectors.ticket_get(request.user, pk)
        if stepup.needs_reauthentication(request, ticket.environment):
            raise ReauthenticationRequired()
        response: HttpResponse = view(request, pk)
        return response

    return wrapped


@login_required
@require_POST
def ticket_plan(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _post_action(
        request,
        pk,
        lambda t: services.ticket_plan(
            ticket_id=t.pk,
            actor=request.user,
            reason=validation.clean_text(reason, "reason", 200),
        ),
        "A new plan has been queued; earlier approvals no longer count.",
    )


@login_required
@require_POST
@step_up_for_sensitive_environments
def ticket_approve(request: HttpRequest, pk: int) -> HttpResponse:
    comment = request.POST.get("comment", "")
    reviewed = request.POST.get("plan_sha256", "")
    if not reviewed:
        messages.error(request, "Reload the page: the form did not say which plan you reviewed.")
        return redirect("ticket_detail", pk=pk)
    return _post_action(
        request,
        pk,
        lambda t: services.approval_grant(
            ticket_id=t.pk,
            actor=request.user,
            comment=validation.clean_text(comment, "comment", validation.COMMENT_MAX),
            # The plan the page showed: if it was replaced meanwhile, nothing is approved.
            plan_sha256=validation.clean_text(reviewed, "plan_sha256", 64),
        ),
        "Approved.",
    )


@login_required
@require_POST
def ticket_reject(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _post_action(
        request,
        pk,
        lambda t: services.ticket_reject(
            ticket_id=t.pk,
            actor=request.user,
            reason=validation.clean_text(reason, "reason", validation.COMMENT_MAX),
        ),
        "Rejected.",
    )


@login_required
@require_POST
@step_up_for_sensitive_environments
def ticket_deploy(request: HttpRequest, pk: int) -> HttpResponse:
    return _post_action(
        request,
        pk,
        lambda t: services.ticket_deploy(ticket_id=t.pk, actor=request.user),
        "Deploy started: Terraform is applying the approved plan.",
    )


@login_required
@require_POST
def ticket_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _post_action(
        request,
        pk,
        lambda t: services.ticket_cancel(
            ticket_id=t.pk,
            actor=request.user,
            reason=validation.clean_text(reason, "reason", validation.COMMENT_MAX),
        ),
        "Ticket cancelled.",
    )


@login_required
@require_GET
def run_log(request: HttpRequest, pk: int) -> JsonResponse:
    """The live log feed: text after ``offset``, and whether the run is still going."""
    run = selectors.run_get(request.user, pk)
    try:
        offset = int(request.GET.get("offset", "0"))
    except ValueError:
        return JsonResponse({"detail": "offset must be an integer"}, status=400)
    text, next_offset = selectors.run_log_since(run, offset)
    latest = run.ticket.runs.order_by("-created_at", "-id").first()
    return JsonResponse(
        {
            "run": run.pk,
            "status": run.status,
            "status_label": run.get_status_display(),
            "active": run.is_active,
            "text": text,
            "offset": next_offset,
            "ticket_status": run.ticket.status,
            "ticket_status_label": run.ticket.get_status_display(),
            # The page follows the ticket from one run to the next without reloading.
            "latest_run": {
                "id": latest.pk,
                "title": f"{latest.get_kind_display()} run #{latest.pk}",
                "log_url": reverse("run_log", args=[latest.pk]),
                "active": latest.is_active,
            }
            if latest
            else None,
        }
    )


@login_required
@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    envs = selectors.environments_visible_to(request.user)
    roles = selectors.user_roles(request.user)
    # Drift reports are shown to those who see the environment's tickets.
    drift = selectors.latest_drift_by_environment(
        [e for e in envs if policy.can_view(e, roles, superuser=request.user.is_superuser)]
    )
    rows = [
        {
            "env": env,
            "rule": policy.describe_rule(env.approval_rule),
            "window": policy.Window.of(env),
            # Deployment history is read by those who see every ticket of the environment.
            "history": policy.can_view(
                env, selectors.user_roles(request.user), superuser=request.user.is_superuser
            ),
            **environment_window_state(env, now),  # freezes applied
            "drift": drift.get(env.pk),
            # Who may declare, change and lift its freezes (the form is offered to them).
            "may_freeze": policy.may_manage_freezes(
                env, roles, superuser=request.user.is_superuser
            ),
        }
        for env in envs
    ]
    return render(
        request,
        "deployments/environment_list.html",
        {"rows": rows, "freeze_max_days": settings.FREEZE_MAX_DAYS},
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: database, broker and storage, each checked
    for real (and storage without writing). 200 when all are ok, else 503; the body says
    ``ok`` or ``failed`` per part and nothing more (it is public): the reason is logged."""
    checks: dict[str, str] = {}
    for part, probe in health.PROBES.items():
        try:
            probe()
        except Exception:
            log.exception("health check: %s failed", part)
            checks[part] = "failed"
        else:
            checks[part] = "ok"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
