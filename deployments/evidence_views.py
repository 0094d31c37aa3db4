"""Evidence on the ticket page: several files in one plain form, and QA's verdicts."""

from __future__ import annotations

from typing import Any

from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from . import evidence_selectors, policy, selectors, services, stepup, uploads
from .api.evidence import download_url, staging_ticket_data
from .middleware import note_refusal_if_actor
from .models import EvidenceKind, Ticket


def evidence_context(ticket: Ticket, user: Any) -> dict[str, Any]:
    """What the evidence section of the ticket page shows this user."""
    roles = selectors.user_roles(user)
    found = evidence_selectors.verdicts(ticket)
    items = list(evidence_selectors.evidence_for(ticket))
    for item in items:
        item.download = download_url(item)  # type: ignore[attr-defined]
        item.counts = evidence_selectors.counts_for_signoff(item, ticket)  # type: ignore[attr-defined]
        try:
            policy.check_may_withdraw_evidence(
                ticket,
                user_id=user.pk,
                user_roles=roles,
                uploaded_by_id=item.uploaded_by_id,
                withdrawn=item.withdrawn_at is not None,
            )
            item.may_withdraw = True  # type: ignore[attr-defined]
        except policy.PolicyError:
            item.may_withdraw = False  # type: ignore[attr-defined]
    staging_env = bool(ticket.environment.requires_qa_signoff)
    closed = ""
    try:
        policy.check_may_upload_evidence(ticket, user_roles=roles, kind="other", passed=None)
        can_upload = True
    except policy.PolicyError as exc:
        can_upload = False
        closed = exc.message
    is_qa = policy.QA_ROLE in roles
    staging = staging_ticket_data(ticket, user) if policy.promotion_applies(ticket) else None
    gate = ""
    if policy.promotion_applies(ticket):
        try:
            evidence_selectors.check_promotion(ticket)
        except policy.PolicyError as exc:
            gate = exc.message
            named = [s.ticket_id for s in evidence_selectors.promotion_state(ticket) if s]
            if set(named) - selectors.visible_ticket_ids(user, named):
                # The refusal names a staging ticket this viewer may not see: say what is
                # needed without it.
                gate = (
                    f"{ticket.environment.name} needs commit {ticket.commit_sha[:10]} validated "
                    "in staging first (a completed staging ticket with passed smoke_tests and "
                    "qa_report)"
                )
    return {
        "evidence_items": items,
        "evidence_kinds": [
            (value, label)
            for value, label in EvidenceKind.choices
            if is_qa or value != EvidenceKind.QA_REPORT
        ],
        "evidence_can_upload": can_upload,
        "evidence_closed": closed,
        "evidence_is_qa": is_qa,
        "evidence_staging_env": staging_env,
        "evidence_missing": policy.signoff_missing(found) if staging_env else (),
        "evidence_failed": policy.failed_smoke_tests(found) if staging_env else None,
        "evidence_limit": uploads.limit_text(),
        "evidence_max_files": settings.EVIDENCE_MAX_FILES,
        "staging": staging,
        "promotion_gate": gate,
        "evidence_use": evidence_selectors.evidence_use(ticket, user, timezone.now(), items),
        "evidence_quota": evidence_selectors.evidence_quota(),
    }


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
    request.POST  # noqa: B018  # parse now, through deployments.uploads' limit
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
        note_refusal_if_actor(request, exc)
        done = f" ({', '.join(kept)} uploaded before that)" if kept else ""
        messages.error(request, f"{exc.message}{done}")
    else:
        messages.success(request, f"Uploaded {', '.join(kept)}.")
    return redirect(f"/tickets/{ticket.pk}/#evidence")


@login_required
@require_POST
def evidence_withdraw(request: HttpRequest, pk: int, eid: int) -> HttpResponse:
    """Its uploader or QA withdraws a file, saying why (the bytes are kept for a while)."""
    item = evidence_selectors.evidence_get(request.user, pk, eid)
    try:
        services.evidence_withdraw(
            ticket_id=item.ticket_id,
            evidence_id=item.pk,
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
    except (policy.PolicyError, services.InputError) as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{item.filename} withdrawn: it no longer counts for the sign-off."
        )
    return redirect(f"/tickets/{item.ticket_id}/#evidence")


@login_required
@require_POST
def evidence_signoff(request: HttpRequest, pk: int, eid: int) -> HttpResponse:
    """QA's verdict on one item, from the ticket page."""
    item = evidence_selectors.evidence_get(request.user, pk, eid)
    if stepup.needs_reauthentication(request, item.ticket.environment):
        raise ReauthenticationRequired()
    try:
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
    except (policy.PolicyError, services.InputError) as exc:
        note_refusal_if_actor(request, exc)
        messages.error(request, exc.message)
    else:
        verdict = "passed" if passed else "failed"
        messages.success(request, f"{item.filename} signed off as {verdict}.")
    return redirect(f"/tickets/{item.ticket_id}/#evidence")
