"""Reads of CI check results."""

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
