"""Reads of the monitoring period for the ticket page and API (a bounded number of queries,
whatever the number of probes recorded)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from deployments import policy
from deployments.choices import TicketStatus
from deployments.models import ChecklistItem, MonitoringCheck, MonitoringPeriod, Ticket

# The check history shown on the page and in the API (newest first).
HISTORY_SHOWN = 20
# Recent rows read to know each probe target's latest result.
RECENT_ROWS = 200


@dataclass
class Monitoring:
    period: MonitoringPeriod | None
    items: list[ChecklistItem]
    checks: list[MonitoringCheck] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    remaining_seconds: int = 0
    state: str = "none"  # none · running · alarm · acknowledged · over
    complete_blocked: str = ""  # why the ticket cannot be completed now ("" = it can)

    @property
    def ends_at(self) -> dt.datetime | None:
        return self.period.ends_at if self.period else None

    @property
    def alarm(self) -> policy.Alarm | None:
        if self.period is None or self.period.alarm_at is None:
            return None
        return policy.Alarm(
            at=self.period.alarm_at,
            reason=self.period.alarm_reason,
            acknowledged=self.period.acknowledged_at is not None,
        )

    @property
    def remaining_text(self) -> str:
        """'59:12' or '1:05:00': what the countdown shows before its script takes over."""
        hours, rest = divmod(self.remaining_seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"

    @property
    def shown(self) -> bool:
        return self.period is not None or bool(self.items)


def monitoring_for(ticket: Ticket, now: dt.datetime) -> Monitoring:
    """The ticket's latest monitoring period, checklist, recent checks and whether it may
    be completed now (the ticket's rules, not the viewer's role)."""
    period = (
        MonitoringPeriod.objects.filter(ticket=ticket).select_related("acknowledged_by").first()
    )
    items = list(ChecklistItem.objects.filter(ticket=ticket).select_related("signed_by"))
    view = Monitoring(period=period, items=items)
    if period is not None:
        recent = list(
            MonitoringCheck.objects.filter(period=period).order_by("-at", "-id")[:RECENT_ROWS]
        )
        view.checks = recent[:HISTORY_SHOWN]
        latest: dict[tuple[str, str], MonitoringCheck] = {}
        for row in recent:
            latest.setdefault((row.source, row.target), row)
        view.failing = sorted(row.target for row in latest.values() if not row.ok)
        view.remaining_seconds = max(0, int((period.ends_at - now).total_seconds()))
        alarm = view.alarm
        if alarm is not None:
            view.state = "acknowledged" if alarm.acknowledged else "alarm"
        else:
            view.state = "running" if view.remaining_seconds > 0 else "over"
    if ticket.status == TicketStatus.MONITORING and view.shown:
        alarm = view.alarm
        try:
            policy.check_may_complete(
                ticket,
                [policy.OpenItem(label=i.label, signed=i.signed) for i in items],
                [alarm] if alarm else [],
                now,
                ends_at=view.ends_at,
            )
        except policy.PolicyError as exc:
            view.complete_blocked = exc.message
    return view
