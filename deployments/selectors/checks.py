"""Reads of CI check results."""

from __future__ import annotations

from deployments.models import CheckResult, Ticket


def latest_check_statuses(ticket: Ticket) -> dict[str, str]:
    """Each reported check name with the status of its latest report (what
    attach_latest_check_statuses read for a list of tickets, else one query)."""
    cached = getattr(ticket, "_latest_check_statuses", None)
    if cached is not None:
        return dict(cached)
    latest: dict[str, str] = {}
    for name, status in (
        CheckResult.objects.filter(ticket=ticket)
        .order_by("-created_at", "-id")
        .values_list("name", "status")
    ):
        latest.setdefault(name, status)
    return latest


def attach_latest_check_statuses(tickets: list[Ticket]) -> None:
    """latest_check_statuses of many tickets in one query (none for no tickets)."""
    if not tickets:
        return
    latest: dict[int, dict[str, str]] = {t.pk: {} for t in tickets}
    for ticket_id, name, status in (
        CheckResult.objects.filter(ticket_id__in=sorted(latest))
        .order_by("-created_at", "-id")
        .values_list("ticket_id", "name", "status")
    ):
        latest[ticket_id].setdefault(name, status)
    for ticket in tickets:
        ticket._latest_check_statuses = latest[ticket.pk]  # type: ignore[attr-defined]


def group_checks(ticket: Ticket, results: list[CheckResult]) -> list[dict[str, object]]:
    """A ticket's reports (newest first) grouped by name, required checks first, each with
    its latest report and the history before it."""
    groups: dict[str, dict[str, object]] = {}
    for result in results:
        group = groups.get(result.name)
        if group is None:
            groups[result.name] = {"name": result.name, "latest": result, "history": []}
        else:
            group["history"].append(result)  # type: ignore[attr-defined]
    required = list(ticket.environment.required_checks or [])
    for name in required:
        groups.setdefault(name, {"name": name, "latest": None, "history": []})
    for group in groups.values():
        group["required"] = group["name"] in required
    return sorted(groups.values(), key=lambda g: (not g["required"], str(g["name"])))
