"""GitHub webhooks: verify, record each delivery once, and act on it in the worker."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import policy
from deployments import terraform as tf
from deployments.lib import validation
from deployments.models import (
    DeliveryStatus,
    Environment,
    GitHubLogin,
    PullRequest,
    Stack,
    Ticket,
    WebhookDelivery,
)
from deployments.selectors import user_roles
from deployments.services import stack_webhooks
from deployments.services.audit import audit_record
from deployments.services.stacks import stack_branch, stack_repo
from deployments.services.tickets import TicketInput, ticket_create

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = "github"
SERVICE_ROLE = "developer"
ZERO_SHA = "0" * 40
PR_ACTIONS = {"opened", "reopened", "synchronize", "edited", "closed", "ready_for_review"}


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """Does ``header`` (X-Hub-Signature-256) sign ``body`` with ``secret``? Constant time."""
    if not secret or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _repository_problem(payload: dict[str, Any]) -> str:
    """Why a delivery is not from the configured repository, or "" when it is: the full
    name (GitHub ignores its case) AND the numeric id must both match."""
    repository = payload.get("repository")
    repository = repository if isinstance(repository, dict) else {}
    name, number = repository.get("full_name"), repository.get("id")
    seen = f"{name} (id {number})" if name else "no repository"
    expected_name: str = settings.GITHUB_REPOSITORY
    expected_id: int = settings.GITHUB_REPOSITORY_ID
    if (
        isinstance(name, str)
        and name.lower() != (expected_name or "").lower()
        and stack_webhooks.is_stack_repository(name)
    ):
        return ""  # the repository of a stack (its own secret signed it: api.webhooks)
    if not expected_name or not expected_id:
        return (
            f"from {seen}: GITHUB_REPOSITORY and GITHUB_REPOSITORY_ID are not both set, so "
            "the portal acts for no repository"
        )
    if (
        not isinstance(name, str)
        or name.lower() != expected_name.lower()
        or number != expected_id
        or isinstance(number, bool)
    ):
        return f"from {seen}, not the configured {expected_name} (id {expected_id})"
    return ""


def _ignored_reason(event: str, payload: dict[str, Any]) -> str:
    """Why a delivery needs no work, or "" when the worker must act on it."""
    if event == "ping":
        return "ping: the webhook is set up"
    if event in ("push", "pull_request"):
        problem = _repository_problem(payload)
        if problem:
            return f"{event} {problem}"
    if event == "push":
        ref = payload.get("ref")
        after = payload.get("after")
        name = str(_get(payload, "repository", "full_name") or "")
        stacks = stack_webhooks.repository_stacks(name)
        refs = sorted(
            {f"refs/heads/{settings.INFRA_BRANCH}"}
            if not stacks
            else {f"refs/heads/{stack_branch(s)}" for s in stacks}
        )
        branch_ref = " or ".join(refs)
        if not isinstance(ref, str):
            return "push without a ref"
        if ref.startswith("refs/tags/"):
            return f"push of tag {ref.removeprefix('refs/tags/')}: only {branch_ref} deploys"
        if ref not in refs:
            return f"push to {ref}: only {branch_ref} deploys"
        if payload.get("deleted") or after == ZERO_SHA:
            return f"{ref} was deleted: nothing to deploy"
        if not isinstance(after, str) or not tf.SHA_RE.match(after):
            return "push without a 40-hex 'after' commit"
        return ""
    if event == "pull_request":
        pr = payload.get("pull_request")
        if payload.get("action") not in PR_ACTIONS:
            return f"pull_request action {payload.get('action')!r} changes nothing here"
        if not isinstance(pr, dict):
            return "pull_request event without a pull_request"
        return ""
    return f"{event} events are not used"


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _essentials(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The part of a payload the worker uses (a push can carry thousands of commits)."""
    repository = {
        "full_name": _get(payload, "repository", "full_name"),
        "id": _get(payload, "repository", "id"),
    }
    if event == "push":
        message = _get(payload, "head_commit", "message")
        return {
            "ref": payload.get("ref"),
            "after": payload.get("after"),
            "deleted": payload.get("deleted"),
            "head_commit": {"message": message[:1000] if isinstance(message, str) else ""},
            "pusher": {"name": _get(payload, "pusher", "name")},
            # Which stacks the push changed (services.stack_webhooks): the folders of the
            # commits' added, modified and removed files (None: not all of them are known).
            "changed_dirs": stack_webhooks.changed_dirs(payload),
            "sender": {
                "login": _get(payload, "sender", "login"),
                "id": _get(payload, "sender", "id"),
            },
            "repository": repository,
        }
    pr = payload.get("pull_request") or {}
    return {
        "action": payload.get("action"),
        "number": payload.get("number"),
        "pull_request": {
            "number": pr.get("number"),
            "html_url": pr.get("html_url"),
            "title": pr.get("title"),
            "user": {"login": _get(pr, "user", "login")},
            "state": pr.get("state"),
            "merged": pr.get("merged"),
            "merge_commit_sha": pr.get("merge_commit_sha"),
            "head": {"sha": _get(pr, "head", "sha")},
        },
        "repository": repository,
    }


def webhook_receive(
    *, delivery_id: str, event: str, payload: dict[str, Any]
) -> tuple[WebhookDelivery, bool]:
    """Record a verified delivery once. Returns (delivery, created): a redelivery of the same
    X-GitHub-Delivery is not recorded again and not processed again."""
    existing = WebhookDelivery.objects.filter(delivery_id=delivery_id).first()
    if existing is not None and existing.status != DeliveryStatus.REFUSED:
        if existing.status == DeliveryStatus.FAILED and existing.payload:
            # It failed (the commit could not be fetched yet, the repository was down):
            # GitHub's "Redeliver" is how people retry it. Filing stays once per commit.
            retried = WebhookDelivery.objects.filter(
                pk=existing.pk, status=DeliveryStatus.FAILED
            ).update(status=DeliveryStatus.QUEUED, processed_at=None)
            if retried:
                audit_record(
                    actor="github webhook",
                    action="webhook.retry",
                    data={"delivery": delivery_id, "event": event, "failed": existing.outcome},
                )
                existing.refresh_from_db()
        if existing.status == DeliveryStatus.QUEUED:
            # Never picked up (the broker was down): GitHub's "Redeliver" sends it again.
            # Safe to repeat: the worker claims a delivery once (webhook_process).
            webhook_dispatch(delivery_pk=existing.pk)
        return existing, False
    reason = _ignored_reason(event, payload)
    fields = {
        "event": event,
        "status": DeliveryStatus.IGNORED if reason else DeliveryStatus.QUEUED,
        "outcome": reason,
        "processed_at": timezone.now() if reason else None,
        "payload": {} if reason else _essentials(event, payload),
    }
    try:
        with transaction.atomic():
            if existing is not None:
                # Refused before (too large, not JSON) and sent again by GitHub's Redeliver
                # once the portal was set up to read it: received now, in the same record.
                taken = WebhookDelivery.objects.filter(
                    pk=existing.pk, status=DeliveryStatus.REFUSED
                ).update(**fields)
                if not taken:
                    return WebhookDelivery.objects.get(pk=existing.pk), False
                delivery = WebhookDelivery.objects.get(pk=existing.pk)
            else:
                delivery = WebhookDelivery.objects.create(delivery_id=delivery_id, **fields)
            audit_record(
                actor="github webhook",
                action="webhook.receive",
                data={
                    "delivery": delivery_id,
                    "event": event,
                    "status": delivery.status,
                    "reason": reason,
                },
            )
            if not reason:
                transaction.on_commit(lambda: webhook_dispatch(delivery_pk=delivery.pk))
    except IntegrityError:
        # The same delivery arrived twice at once: the other request recorded it.
        return WebhookDelivery.objects.get(delivery_id=delivery_id), False
    return delivery, True


_EVENT_CHARS = re.compile(r"[^a-z0-9_]")


def webhook_refuse(*, delivery_id: str, event: str, reason: str) -> WebhookDelivery:
    """Record a signed delivery the portal cannot read (answered 4xx), with the reason, so
    it shows among the deliveries. Without a usable X-GitHub-Delivery it gets an id of its
    own; a redelivery of one already refused keeps one record with the latest reason."""
    event = _EVENT_CHARS.sub("", event.lower())[:64] or "(none)"
    outcome = reason[:2000]
    with transaction.atomic():
        existing = (
            WebhookDelivery.objects.select_for_update().filter(delivery_id=delivery_id).first()
            if delivery_id
            else None
        )
        if existing is not None and existing.status != DeliveryStatus.REFUSED:
            return existing  # received before; this copy of it is only refused
        if existing is not None:
            existing.outcome, existing.processed_at = outcome, timezone.now()
            existing.save(update_fields=["outcome", "processed_at"])
            delivery = existing
        else:
            delivery = WebhookDelivery.objects.create(
                delivery_id=delivery_id or f"refused-{uuid.uuid4()}",
                event=event,
                status=DeliveryStatus.REFUSED,
                outcome=outcome,
                processed_at=timezone.now(),
            )
        audit_record(
            actor="github webhook",
            action="webhook.refuse",
            data={"delivery": delivery.delivery_id, "event": event, "reason": outcome[:500]},
        )
    return delivery


def webhook_dispatch(*, delivery_pk: int) -> None:
    """Send a queued delivery to the worker; a broker outage leaves it queued (logged)."""
    from deployments.tasks import webhook_process  # tasks import services

    try:
        webhook_process.apply_async(args=[delivery_pk], retry=False)
    except Exception:
        log.exception("could not send webhook delivery %s to the broker", delivery_pk)


def _finish(delivery: WebhookDelivery, status: str, outcome: str, ticket: Any = None) -> None:
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status, outcome=outcome[:2000], ticket=ticket, processed_at=timezone.now()
        )
        audit_record(
            actor="github webhook",
            action="webhook.process",
            ticket=ticket,
            data={"delivery": delivery.delivery_id, "status": status, "outcome": outcome[:500]},
        )


def service_account() -> Any:
    """The "github" account (developer role) that files tickets for unknown pushers."""
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=SERVICE_ACCOUNT)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=SERVICE_ROLE))
            audit_record(
                actor="github webhook",
                action="user.create",
                data={"username": SERVICE_ACCOUNT, "roles": [SERVICE_ROLE]},
            )
    return user


def _author(payload: dict[str, Any], env: Environment) -> tuple[Any, str]:
    """Who a push is filed as, and why not the pusher when it is the service account.

    Only an administrator's explicit link (GitHubLogin) maps GitHub's ``sender.login`` to a
    portal user; a GitHub name that merely equals a username (``admin``) maps to no one.
    """
    login = (payload.get("sender") or {}).get("login")
    if not isinstance(login, str) or not login:
        return service_account(), "the push names no GitHub sender"
    link = GitHubLogin.objects.select_related("user").filter(login__iexact=login).first()
    if link is None:
        return service_account(), f"GitHub user {login} is linked to no portal user"
    user = link.user
    if not user.is_active:
        return service_account(), f"{user.get_username()} ({login}) is inactive"
    try:
        policy.check_may_file(env, user_roles(user), superuser=bool(user.is_superuser))
    except policy.PolicyError:
        return service_account(), f"{user.get_username()} ({login}) may not file in {env.name}"
    return user, ""


def _process_push(delivery: WebhookDelivery) -> None:
    payload = delivery.payload
    sha = str(payload["after"]).lower()
    name = str(_get(payload, "repository", "full_name") or "")
    # The stacks of the pushed repository and branch (docs/stacks.md); none declared for
    # it: the portal's own repository's default stack, as before stacks.
    stacks = stack_webhooks.branch_stacks(
        stack_webhooks.repository_stacks(name), str(payload.get("ref") or "")
    ) or [Stack.default()]
    repo = stack_repo(stacks[0])
    try:
        known = repo.has_commit(sha)  # fetches a remote repository when the commit is new
    except tf.SourceError as exc:
        _finish(delivery, DeliveryStatus.FAILED, f"infrastructure repository: {exc}")
        return
    if not known:
        _finish(
            delivery,
            DeliveryStatus.FAILED,
            f"commit {sha} is not in the infrastructure repository",
        )
        return
    if Stack.objects.count() == 1:
        touched = [stack_webhooks.Touched(stacks[0], "the only stack")]
    else:
        touched = stack_webhooks.stacks_touched(
            stacks,
            sha,
            payload.get("changed_dirs"),
        )
    if not touched:
        _finish(
            delivery,
            DeliveryStatus.IGNORED,
            "the push changed no stack's root or local modules ("
            + ", ".join(s.name for s in stacks)
            + ")",
        )
        return
    head = payload.get("head_commit") or {}
    message = str(head.get("message") or "").strip().splitlines()
    # A title is one line of plain text (validation.line_problem): a commit subject may hold
    # tabs or escapes, which become spaces rather than refuse the push.
    subject = validation.one_line(message[0] if message else repo.commit_subject(sha))
    pr = PullRequest.for_commit(sha)
    filed: list[str] = []
    ticket = None
    several = len(touched) > 1 or Stack.objects.count() > 1
    for env_pk in Environment.objects.filter(deploy_on_merge=True).values_list("pk", flat=True):
        for hit in touched:
            stack = hit.stack
            # Two deliveries of the same commit (GitHub redelivers under a new id, or two
            # pushes race) file one ticket per stack: the environment row is locked while we
            # look and file (SQLite's immediate transactions serialise the same way).
            with transaction.atomic():
                env = Environment.objects.select_for_update().get(pk=env_pk)
                label = f"{env.name} {stack.name}" if several else env.name
                if Ticket.objects.filter(
                    environment=env, stack=stack, commit_sha=sha, source="github"
                ).exists():
                    filed.append(f"{label}: already filed for {sha[:10]}")
                    continue
                author, why = _author(payload, env)
                title = f"Merge to {stack_branch(stack)}: {subject}"
                if several:
                    title = f"[{stack.name}] {title}"
                ticket = ticket_create(
                    actor=author,
                    data=TicketInput(
                        title=title[:200] or "Merge",
                        environment=env.name,
                        stack=stack.name,
                        description=(
                            f"Filed by the GitHub push webhook (delivery "
                            f"{delivery.delivery_id})"
                            + (f"; {stack.name}: {hit.why}" if several else "")
                            + "."
                        ),
                        commit_sha=sha,
                        pull_request_url=pr.url if pr else "",
                    ),
                    source="github",
                )
            note = f" ({why})" if why else ""
            filed.append(f"{label}: ticket #{ticket.pk} by {author.get_username()}{note}")
    if not filed:
        _finish(delivery, DeliveryStatus.IGNORED, "no environment has deploy_on_merge")
        return
    _finish(delivery, DeliveryStatus.PROCESSED, "; ".join(filed), ticket)


def _process_pull_request(delivery: WebhookDelivery) -> None:
    payload = delivery.payload
    pr = payload["pull_request"]
    repository = str((payload.get("repository") or {}).get("full_name") or "")[:200]
    url = str(pr.get("html_url") or "")
    head_sha = str((pr.get("head") or {}).get("sha") or "").lower()
    number = pr.get("number") if isinstance(pr.get("number"), int) else payload.get("number")
    if not isinstance(number, int) or number < 1 or not tf.SHA_RE.match(head_sha):
        _finish(delivery, DeliveryStatus.IGNORED, "pull_request without a number or head sha")
        return
    if not url.startswith("https://") or len(url) > 500:
        _finish(delivery, DeliveryStatus.IGNORED, "pull_request without an https html_url")
        return
    # Merged: the commit the merge put on the base branch is what the push to main deploys
    # (a merge or squash commit differs from the head), so its dev ticket links this PR too.
    merge_sha = str(pr.get("merge_commit_sha") or "").lower() if pr.get("merged") else ""
    if not tf.SHA_RE.match(merge_sha):
        merge_sha = ""
    commits = {head_sha, merge_sha} - {""}
    with transaction.atomic():
        record, _ = PullRequest.objects.update_or_create(
            repository=repository,
            number=number,
            defaults={
                "url": url,
                "title": str(pr.get("title") or "")[:300],
                "author": str((pr.get("user") or {}).get("login") or "")[:100],
                "head_sha": head_sha,
                "state": "merged" if pr.get("merged") else str(pr.get("state") or "")[:16],
                **({"merge_commit_sha": merge_sha} if merge_sha else {}),
            },
        )
        tickets = list(
            Ticket.objects.select_for_update().filter(commit_sha__in=commits, pull_request_url="")
        )
        for ticket in tickets:
            ticket.pull_request_url = url
            ticket.save(update_fields=["pull_request_url", "updated_at"])
            audit_record(
                actor="github webhook",
                action="ticket.pull_request",
                ticket=ticket,
                data={"number": number, "url": url},
            )
    attached = ", ".join(f"#{t.pk}" for t in tickets) or "no ticket yet"
    _finish(
        delivery,
        DeliveryStatus.PROCESSED,
        f"pull request {record.number} ({head_sha[:10]}) attached to {attached}",
        tickets[0] if tickets else None,
    )


def webhook_process(*, delivery_pk: int) -> None:
    """Act on a queued delivery, once: claim it, then file/attach, then record the outcome."""
    claimed = WebhookDelivery.objects.filter(pk=delivery_pk, status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.PROCESSING
    )
    if not claimed:
        return
    delivery = WebhookDelivery.objects.get(pk=delivery_pk)
    try:
        # Checked again here: the settings may have changed since it was received.
        problem = (
            _repository_problem(delivery.payload)
            if delivery.event in ("push", "pull_request")
            else ""
        )
        if problem:
            _finish(delivery, DeliveryStatus.IGNORED, f"{delivery.event} {problem}")
        elif delivery.event == "push":
            _process_push(delivery)
        elif delivery.event == "pull_request":
            _process_pull_request(delivery)
        else:
            _finish(delivery, DeliveryStatus.IGNORED, f"{delivery.event} events are not used")
    except Exception as exc:
        log.exception("webhook delivery %s failed", delivery.delivery_id)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        _finish(delivery, DeliveryStatus.FAILED, f"{type(exc).__name__}: {message}")
