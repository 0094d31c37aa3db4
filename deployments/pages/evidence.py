"""Evidence on the ticket page: several files in one plain form, and QA's verdicts (the
section itself is selectors.evidence.EvidenceSection, read through the ticket view)."""

from __future__ import annotations

from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from deployments import policy, selectors, services
from deployments.lib import stepup, uploads
from deployments.models import Ticket
from deployments.pages.actions import Done, page_action, refuse, to_ticket
from deployments.selectors import evidence as evidence_selectors


def _kind_and_verdict(request: HttpRequest) -> tuple[str, bool | None]:
    kind = request.POST.get("kind", "")
    raw = request.POST.get("passed", "")
    passed = {"true": True, "false": False}.get(raw)
    if raw and passed is None:
        raise services.InputError("passed", "passed must be true, false or empty")
    return kind, passed


@csrf_exempt  # the CSRF check runs below, once the bounded upload handler parsed the body
@login_required
@require_POST
def evidence_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Several files from the ticket page (a plain multipart form; drag and drop fills it)."""
    ticket = selectors.ticket_get(request.user, pk)
    request.POST  # noqa: B018  # parse now, through deployments.lib.uploads' limit
    refused = uploads.refusal(request)
    if refused:
        # Nothing was kept, so there is nothing a forged request could have done.
        messages.error(request, f"Nothing uploaded: {refused}.")
        return redirect("ticket_detail", pk=ticket.pk)
    response: HttpResponse = csrf_protect(_store)(request, ticket)
    return response


def _store(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    files = request.FILES.getlist("file")
    if not files:
        messages.error(request, "Choose or drop at least one file to upload.")
        return redirect("ticket_detail", pk=ticket.pk)
    if len(files) > settings.EVIDENCE_MAX_FILES:
        messages.error(request, f"Upload at most {settings.EVIDENCE_MAX_FILES} files at once.")
        return redirect("ticket_detail", pk=ticket.pk)
    kept: list[str] = []
    try:
        kind, passed = _kind_and_verdict(request)
        for file in files:
            item = services.evidence_upload(
                ticket_id=ticket.pk,
                actor=request.user,
                file=file,
                kind=kind,
                passed=passed,
                note=request.POST.get("note", ""),
            )
            kept.append(item.filename)
    except (policy.PolicyError, services.InputError) as exc:
        refuse(request, exc, suffix=f" ({', '.join(kept)} uploaded before that)" if kept else "")
    else:
        messages.success(request, f"Uploaded {', '.join(kept)}.")
    return redirect(f"/tickets/{ticket.pk}/#evidence")


@login_required
@require_POST
@page_action(back=to_ticket("evidence"))
def evidence_withdraw(request: HttpRequest, pk: int, eid: int) -> Done:
    """Its uploader or QA withdraws a file, saying why (the bytes are kept for a while)."""
    item = evidence_selectors.evidence_get(request.user, pk, eid)
    services.evidence_withdraw(
        ticket_id=item.ticket_id,
        evidence_id=item.pk,
        actor=request.user,
        reason=request.POST.get("reason", ""),
    )
    return Done(f"{item.filename} withdrawn: it no longer counts for the sign-off.")


@login_required
@require_POST
@page_action(back=to_ticket("evidence"))
def evidence_signoff(request: HttpRequest, pk: int, eid: int) -> Done:
    """QA's verdict on one item, from the ticket page."""
    item = evidence_selectors.evidence_get(request.user, pk, eid)
    if stepup.needs_reauthentication(request, item.ticket.environment):
        raise ReauthenticationRequired()
    _, passed = _kind_and_verdict(request)
    if passed is None:
        raise services.InputError("passed", "choose passed or failed")
    services.evidence_sign_off(
        ticket_id=item.ticket_id,
        evidence_id=item.pk,
        actor=request.user,
        passed=passed,
        note=request.POST.get("note", ""),
    )
    return Done(f"{item.filename} signed off as {'passed' if passed else 'failed'}.")
