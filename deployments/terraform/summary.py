"""Reading `terraform show -json <planfile>` into a summary that holds no values."""

from __future__ import annotations

from typing import Any


def _action(actions: list[str]) -> str:
    if actions == ["no-op"] or actions == ["read"]:
        return actions[0]
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    return actions[0] if len(actions) == 1 else "+".join(actions)


def summarize_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Counts and per-resource address, type, module and action (create, update, delete,
    replace). Attribute values are left out: they may be secret."""
    add = change = destroy = 0
    resources: list[dict[str, str]] = []
    for rc in plan.get("resource_changes") or []:
        actions = list((rc.get("change") or {}).get("actions") or [])
        action = _action(actions)
        if "create" in actions:
            add += 1
        if "delete" in actions:
            destroy += 1
        if actions == ["update"]:
            change += 1
        if action not in ("no-op", "read"):
            resources.append(
                {
                    "address": str(rc.get("address", "")),
                    "type": str(rc.get("type", "")),
                    "module": str(rc.get("module_address", "")),
                    "action": action,
                }
            )
    output_changes = plan.get("output_changes") or {}
    outputs = sorted(
        name for name, oc in output_changes.items() if (oc.get("actions") or ["no-op"]) != ["no-op"]
    )
    return {
        "add": add,
        "change": change,
        "destroy": destroy,
        "resources": resources,
        "outputs_changed": outputs,
        "terraform_version": plan.get("terraform_version", ""),
    }


def sensitive_values(plan: dict[str, Any]) -> list[str]:
    """Every string value Terraform marks sensitive, so the redactor can mask it in later logs."""
    found: list[str] = []
    root = ((plan.get("configuration") or {}).get("root_module") or {}).get("variables") or {}
    for name, var in (plan.get("variables") or {}).items():
        if (root.get(name) or {}).get("sensitive"):
            _collect_strings(var.get("value"), found)
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        for values_key, marks_key in (("after", "after_sensitive"), ("before", "before_sensitive")):
            _collect_marked(change.get(values_key), change.get(marks_key), found)
    for oc in (plan.get("output_changes") or {}).values():
        if oc.get("after_sensitive") is True or oc.get("before_sensitive") is True:
            _collect_strings(oc.get("after"), found)
            _collect_strings(oc.get("before"), found)
    return found


def _collect_marked(values: Any, marks: Any, found: list[str]) -> None:
    if marks is True:
        _collect_strings(values, found)
    elif isinstance(marks, dict) and isinstance(values, dict):
        for key, mark in marks.items():
            _collect_marked(values.get(key), mark, found)
    elif isinstance(marks, list) and isinstance(values, list):
        for value, mark in zip(values, marks, strict=False):
            _collect_marked(value, mark, found)


def _collect_strings(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, found)
