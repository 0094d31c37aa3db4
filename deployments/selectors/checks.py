"""Reads of CI check results (kept apart from selectors.py, which imports this)."""

from __future__ import annotations

from deployments.models import CheckResult, Ticket


def latest_check_statuses(ticket: Ticket) -> dict[str, str]:
    """Each reported check name with the status of its latest report."""
    latest: dict[str, str] = {}
    for name, status in (
        CheckResult.objects.filter(ticket=ticket)
        .order_by("-created_at", "-id")
        .values_list("name", "status")
    ):
        latest.setdefault(name, status)
    return latest


def checks_for_ticket(ticket: Ticket) -> list[dict[str, object]]:
    """Checks grouped by name, latest report first, with the history of each."""
    groups: dict[str, dict[str, object]] = {}
    for result in CheckResult.objects.filter(ticket=ticket).select_related("reported_by"):
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
