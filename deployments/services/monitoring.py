"""The monitoring period after a deploy (issue 9): probes, alarms, the post-deployment
checklist and completion. docs/monitoring.md explains it for operators.

- ``monitoring_start`` (the worker, in the transaction that moves a ticket to monitoring)
  records the period and creates the ticket's checklist items;
- ``monitoring_poll`` (Celery beat, every MONITORING_POLL_SECONDS) probes CloudWatch alarms
  and health URLs of every ticket in its period, outside any transaction, then records
  what changed: a failing probe raises the period's alarm once (notify, audit, the
  deployment stops being a last known good); a passing health check signs the checklist
  items that name it;
- ``checklist_sign``, ``alarm_acknowledge`` and ``ticket_complete`` are operations' verbs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from deployments import policy
from deployments.choices import TicketStatus
from deployments.lib import validation
from deployments.models import (
    ChecklistItem,
    Environment,
    MonitoringCheck,
    MonitoringPeriod,
    ProbeSource,
    TerraformRun,
    Ticket,
)
from deployments.selectors import user_roles
from deployments.services import notices
from deployments.services._base import InputError, locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.deployments import deployment_monitoring_failed

log = logging.getLogger(__name__)

NOTE_MAX = validation.COMMENT_MAX
# How many recent probe rows are read to know each target's latest result.
RECENT_ROWS = 200


# --- configuration ---------------------------------------------------------------------


def health_checks_for(env: Environment) -> list[policy.HealthCheck]:
    """The environment's health checks merged with HEALTH_CHECK_URLS[env.name]."""
    try:
        own = policy.parse_health_checks(env.health_checks or [])
    except ValueError as exc:  # validated on save; never fail an apply's transaction over it
        log.error("environment %s: health_checks ignored: %s", env.name, exc)
        own = []
    try:
        extra = policy.parse_health_checks(settings.HEALTH_CHECK_URLS.get(env.name, []))
    except ValueError as exc:
        log.error("HEALTH_CHECK_URLS[%s] ignored: %s", env.name, exc)
        extra = []
    return policy.merge_health_checks(own, extra)


def alarm_prefix_for(env: Environment) -> str:
    """The environment's alarm name prefix, else CLOUDWATCH_ALARM_PREFIXES[env.name]."""
    prefix = env.alarm_name_prefix or settings.CLOUDWATCH_ALARM_PREFIXES.get(env.name, "")
    return prefix if isinstance(prefix, str) else ""


# --- the period --------------------------------------------------------------------------


def monitoring_start(ticket: Ticket, run: TerraformRun) -> MonitoringPeriod | None:
    """A deploy reached monitoring (inside the worker's transaction): record the period and
    create the checklist items the environment asks for."""
    env = ticket.environment
    if not policy.monitors(env):
        return None
    started = ticket.deployed_at or run.finished_at or timezone.now()
    checks = health_checks_for(env)
    period = MonitoringPeriod.objects.create(
        ticket=ticket,
        started_at=started,
        ends_at=started + dt.timedelta(minutes=env.monitoring_minutes),
        alarm_names=list(env.alarm_names or []),
        alarm_name_prefix=alarm_prefix_for(env),
        health_checks=[{"url": c.url, "max_latency_ms": c.max_latency_ms} for c in checks],
    )
    specs = _checklist_specs(env, [c.url for c in checks])
    existing = set(ticket.checklist_items.values_list("key", flat=True))
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            ticket=ticket, key=spec.key, label=spec.label, position=i, auto_check=spec.auto
        )
        for i, spec in enumerate(specs)
        if spec.key not in existing
    )
    audit_record(
        actor="worker",
        action="monitoring.start",
        ticket=ticket,
        data={
            "period": period.pk,
            "ends_at": period.ends_at.isoformat(),
            "alarm_names": period.alarm_names,
            "alarm_name_prefix": period.alarm_name_prefix,
            "health_checks": [c["url"] for c in period.health_checks],
            "checklist": [spec.key for spec in specs],
        },
    )
    return period


def _checklist_specs(env: Environment, urls: list[str]) -> list[policy.ChecklistSpec]:
    """The environment's checklist; if it no longer validates (an ``auto`` URL removed from
    HEALTH_CHECK_URLS), every well-formed item is still created, signed by hand."""
    try:
        return policy.parse_checklist(env.checklist or [], urls)
    except ValueError as exc:
        log.error("environment %s: checklist read leniently: %s", env.name, exc)
    specs: list[policy.ChecklistSpec] = []
    for entry in env.checklist if isinstance(env.checklist, list) else []:
        key = entry.get("key") if isinstance(entry, dict) else None
        label = entry.get("label") if isinstance(entry, dict) else None
        well_formed = isinstance(key, str) and policy.CHECKLIST_KEY_RE.match(key)
        if well_formed and isinstance(label, str) and all(s.key != key for s in specs):
            auto = entry.get("auto") if entry.get("auto") in urls else ""
            specs.append(policy.ChecklistSpec(key=str(key), label=label[:200], auto=auto or ""))
    return specs


# --- probes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    source: str
    target: str
    ok: bool
    detail: str


def _cloudwatch() -> Any:
    import boto3

    return boto3.client(
        "cloudwatch",
        endpoint_url=settings.AWS_ENDPOINT_URL,
        region_name=settings.AWS_DEFAULT_REGION,
    )


def probe_cloudwatch(names: list[str], prefix: str) -> list[Probe]:
    """One probe per alarm (ALARM fails; OK and INSUFFICIENT_DATA pass); a configured name
    CloudWatch does not know fails; any error is one failing probe with its text."""
    if not names and not prefix:
        return []
    try:
        client = _cloudwatch()
        found: dict[str, dict[str, Any]] = {}
        paginator = client.get_paginator("describe_alarms")
        queries: list[dict[str, Any]] = []
        if names:
            queries += [{"AlarmNames": names[i : i + 100]} for i in range(0, len(names), 100)]
        if prefix:
            queries.append({"AlarmNamePrefix": prefix})
        for query in queries:
            for page in paginator.paginate(**query):
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm
    except Exception as exc:  # boto3/botocore errors, connection failures: a failing probe
        target = ", ".join(names) or f"{prefix}*"
        return [Probe(ProbeSource.CLOUDWATCH, target[:500], False, f"CloudWatch error: {exc}")]
    probes = [
        Probe(
            ProbeSource.CLOUDWATCH,
            name[:500],
            alarm["StateValue"] != "ALARM",
            f"{alarm['StateValue']}: {alarm.get('StateReason', '')}".strip(),
        )
        for name, alarm in sorted(found.items())
    ]
    probes += [
        Probe(ProbeSource.CLOUDWATCH, name[:500], False, "no such alarm in CloudWatch")
        for name in names
        if name not in found
    ]
    return probes


def probe_http(check: policy.HealthCheck) -> Probe:
    """GET the URL: passes below status 400 within its latency limit."""
    started = time.monotonic()
    # http(s) only: policy.parse_health_checks refuses any other scheme.
    request = urllib.request.Request(check.url, headers={"User-Agent": "portal"})  # noqa: S310
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.MONITORING_HTTP_TIMEOUT_SECONDS
        ) as response:
            response.read(65536)
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except Exception as exc:
        return Probe(ProbeSource.HTTP, check.url, False, f"error: {exc}")
    latency = int((time.monotonic() - started) * 1000)
    detail = f"HTTP {code} in {latency} ms"
    if code >= 400:
        return Probe(ProbeSource.HTTP, check.url, False, detail)
    if check.max_latency_ms is not None and latency > check.max_latency_ms:
        return Probe(
            ProbeSource.HTTP,
            check.url,
            False,
            f"{detail}, over the {check.max_latency_ms} ms limit",
        )
    return Probe(ProbeSource.HTTP, check.url, True, detail)


def _probe(period: MonitoringPeriod) -> list[Probe]:
    probes = probe_cloudwatch(list(period.alarm_names), period.alarm_name_prefix)
    for entry in period.health_checks:
        check = policy.HealthCheck(url=entry["url"], max_latency_ms=entry.get("max_latency_ms"))
        probes.append(probe_http(check))
    return probes


# --- the beat task -------------------------------------------------------------------------


def monitoring_poll() -> int:
    """Probe every ticket in its monitoring period and record the results; returns how many
    periods were polled. Never raises for one ticket's trouble."""
    now = timezone.now()
    periods = list(
        MonitoringPeriod.objects.filter(
            ends_at__gt=now, ticket__status=TicketStatus.MONITORING
        ).order_by("ends_at")
    )
    for period in periods:
        try:
            probes = _probe(period)
            monitoring_record(period_id=period.pk, probes=probes)
        except Exception:
            log.exception("monitoring poll of period %s failed", period.pk)
    return len(periods)


def _latest_by_target(period: MonitoringPeriod) -> dict[tuple[str, str], MonitoringCheck]:
    latest: dict[tuple[str, str], MonitoringCheck] = {}
    for row in period.checks.order_by("-at", "-id")[:RECENT_ROWS]:
        latest.setdefault((row.source, row.target), row)
    return latest


def monitoring_record(*, period_id: int, probes: list[Probe]) -> MonitoringPeriod | None:
    """Record one poll's probes: changed results (and heartbeats), the alarm, auto sign-offs."""
    with transaction.atomic():
        ticket_id = MonitoringPeriod.objects.filter(pk=period_id).values_list(
            "ticket_id", flat=True
        )
        if not ticket_id:
            return None
        ticket = locked_ticket(ticket_id[0])
        period = MonitoringPeriod.objects.select_for_update().get(pk=period_id)
        now = timezone.now()
        if ticket.status != TicketStatus.MONITORING or now >= period.ends_at:
            return period
        latest = _latest_by_target(period)
        heartbeat = dt.timedelta(seconds=settings.MONITORING_HEARTBEAT_SECONDS)
        MonitoringCheck.objects.bulk_create(
            MonitoringCheck(
                ticket=ticket,
                period=period,
                source=p.source,
                target=p.target,
                ok=p.ok,
                detail=p.detail[:2000],
                at=now,
            )
            for p in probes
            if (prev := latest.get((p.source, p.target))) is None
            or prev.ok != p.ok
            or now - prev.at >= heartbeat
        )
        period.last_polled_at = now
        failing = [p for p in probes if not p.ok]
        standing = period.alarm_at is not None and period.acknowledged_at is None
        if failing and not standing:
            _raise_alarm(ticket, period, failing, now)
        elif not failing and probes and standing and period.recovered_at is None:
            _recovered(ticket, period, now)  # once per alarm, however often it flaps
        fields = [
            "last_polled_at",
            "alarm_at",
            "alarm_reason",
            "recovered_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledge_note",
        ]
        period.save(update_fields=fields)
        _auto_sign(ticket, [p for p in probes if p.ok and p.source == ProbeSource.HTTP])
        return period


def _raise_alarm(
    ticket: Ticket, period: MonitoringPeriod, failing: list[Probe], now: dt.datetime
) -> None:
    reason = "; ".join(f"{p.target}: {p.detail}" for p in failing[:5])
    if len(failing) > 5:
        reason += f"; and {len(failing) - 5} more"
    period.alarm_at = now
    period.alarm_reason = reason[:2000]
    period.recovered_at = None
    period.acknowledged_at = None
    period.acknowledged_by = None
    period.acknowledge_note = ""
    deployment_monitoring_failed(ticket, reason=f"monitoring alarm: {reason}", at=now)
    audit_record(
        actor="monitoring",
        action="monitoring.alarm",
        ticket=ticket,
        data={"period": period.pk, "reason": reason[:500], "failing": [p.target for p in failing]},
    )
    notices.monitoring_alarm(ticket, reason=reason, failing=[p.target for p in failing])


def _recovered(ticket: Ticket, period: MonitoringPeriod, now: dt.datetime) -> None:
    """Every probe passes again after the alarm: say so once (the alarm still stands until
    operations acknowledges it or the change is rolled back)."""
    period.recovered_at = now
    audit_record(
        actor="monitoring",
        action="monitoring.recovered",
        ticket=ticket,
        data={"period": period.pk, "alarm": period.alarm_reason[:500]},
    )
    notices.monitoring_recovered(ticket, alarm_reason=period.alarm_reason)


def _auto_sign(ticket: Ticket, passing: list[Probe]) -> None:
    by_url = {p.target: p for p in passing}
    if not by_url:
        return
    items = ChecklistItem.objects.select_for_update().filter(
        ticket=ticket, signed_at__isnull=True, auto_check__in=list(by_url)
    )
    now = timezone.now()
    for item in items:
        probe = by_url[item.auto_check]
        item.signed_at = now
        item.auto = True
        item.note = f"automated check: GET {probe.target} → {probe.detail}"
        item.evidence = {"source": probe.source, "target": probe.target, "detail": probe.detail}
        item.save(update_fields=["signed_at", "auto", "note", "evidence"])
        audit_record(
            actor="automated check",
            action="checklist.signoff",
            ticket=ticket,
            data={"item": item.key, "label": item.label, "auto": True, "reason": item.note},
        )


# --- operations' verbs ---------------------------------------------------------------------


def checklist_sign(*, ticket_id: int, key: str, actor: Any, note: str = "") -> ChecklistItem:
    """Operations signs one checklist item off with a note (once)."""
    note = validation.clean_text(note, "note", NOTE_MAX)
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        item = ChecklistItem.objects.select_for_update().filter(ticket=ticket, key=key).first()
        if item is None:
            raise Http404("no such checklist item on this ticket")
        policy.check_may_sign_checklist(
            ticket,
            user_roles=user_roles(actor),
            signed_by=item.signer_name,
            superuser=actor.is_superuser,
        )
        item.signed_by = actor
        item.signed_at = timezone.now()
        item.note = note
        item.auto = False
        item.save(update_fields=["signed_by", "signed_at", "note", "auto"])
        audit_record(
            actor=actor,
            action="checklist.signoff",
            ticket=ticket,
            data={"item": item.key, "label": item.label, "auto": False, "reason": note},
        )
        return item


def latest_period(ticket: Ticket) -> MonitoringPeriod | None:
    return ticket.monitoring_periods.select_related("acknowledged_by").first()


def period_alarm(period: MonitoringPeriod | None) -> policy.Alarm | None:
    if period is None or period.alarm_at is None:
        return None
    return policy.Alarm(
        at=period.alarm_at,
        reason=period.alarm_reason,
        acknowledged=period.acknowledged_at is not None,
    )


def failing_targets(period: MonitoringPeriod | None) -> list[str]:
    """Targets whose latest recorded probe failed."""
    if period is None:
        return []
    return sorted(row.target for row in _latest_by_target(period).values() if not row.ok)


def alarm_acknowledge(*, ticket_id: int, actor: Any, note: str) -> MonitoringPeriod:
    """Operations acknowledges an alarm whose probes pass again, with a note (audited)."""
    note = validation.clean_text(note, "note", NOTE_MAX)
    if not note.strip():
        raise InputError("note", "say why the alarm needs no rollback")
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        period = ticket.monitoring_periods.select_for_update().first()
        policy.check_may_acknowledge_alarm(
            ticket,
            period_alarm(period),
            failing_targets(period),
            user_roles=user_roles(actor),
            superuser=actor.is_superuser,
        )
        assert period is not None
        period.acknowledged_at = timezone.now()
        period.acknowledged_by = actor
        period.acknowledge_note = note
        period.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledge_note"])
        audit_record(
            actor=actor,
            action="monitoring.acknowledge",
            ticket=ticket,
            data={"period": period.pk, "alarm": period.alarm_reason[:500], "reason": note},
        )
        return period


def completion_check(ticket: Ticket, *, actor: Any = None, now: dt.datetime | None = None) -> None:
    """policy.check_may_complete over the ticket's checklist and latest monitoring period
    (without an actor: the rules about the ticket only)."""
    period = latest_period(ticket)
    alarm = period_alarm(period)
    items = [
        policy.OpenItem(label=item.label, signed=item.signed)
        for item in ticket.checklist_items.all()
    ]
    policy.check_may_complete(
        ticket,
        items,
        [alarm] if alarm else [],
        now or timezone.now(),
        ends_at=period.ends_at if period else None,
        user_roles=user_roles(actor) if actor is not None else None,
        superuser=bool(getattr(actor, "is_superuser", False)),
    )


def ticket_complete(*, ticket_id: int, actor: Any) -> Ticket:
    """Operations completes a monitored ticket: period over, checklist signed, no alarm."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        completion_check(ticket, actor=actor)
        transition(
            ticket,
            TicketStatus.COMPLETED,
            actor=actor,
            reason=f"completed by {actor.get_username()} after monitoring; checklist signed",
        )
        return ticket
