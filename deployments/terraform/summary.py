"""Reading `terraform show -json <planfile>` into a summary that holds no values.

Besides what a plan creates, changes and destroys, a plan changes Terraform's state
without touching the cloud (imports, ``moved`` blocks, ``removed`` blocks that forget a
resource) and may invoke actions (Terraform 1.14+: a Lambda invoked, instances stopped)
whose effects no resource change shows. Applying such a plan is a change all the same,
so each is counted and listed: a move-only plan is not "+0 ~0 -0, nothing to do".
Changes Terraform noticed outside itself (``resource_drift``) are listed apart: applying
the plan does not make them, it only records them.

Format: https://developer.hashicorp.com/terraform/internals/json-format
"""

from __future__ import annotations

from typing import Any


def _action(actions: list[str]) -> str:
    if actions == ["no-op"] or actions == ["read"]:
        return actions[0]
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    # ["forget"]; ["create", "forget"] (a replacement whose old object is kept, unmanaged)
    # reads "create+forget".
    return actions[0] if len(actions) == 1 else "+".join(actions)


def _resource(rc: dict[str, Any], action: str) -> dict[str, Any]:
    change = rc.get("change") or {}
    previous = str(rc.get("previous_address") or "")
    address = str(rc.get("address", ""))
    return {
        "address": address,
        "type": str(rc.get("type", "")),
        "module": str(rc.get("module_address", "")),
        "action": action,
        # Where a `moved` block moved it from ("" when it did not move).
        "previous_address": previous if previous != address else "",
        # Imported into state by this plan. The import ID is left out like every value.
        "importing": change.get("importing") is not None,
    }


def _invocation(ai: dict[str, Any]) -> dict[str, str]:
    """An action invocation: what runs, and what triggers it (a resource's lifecycle event,
    or ``terraform apply -invoke``)."""
    lifecycle = ai.get("lifecycle_action_trigger") or {}
    # Early 1.14 pre-releases named the address `action_address`.
    address = str(ai.get("address") or ai.get("action_address") or "")
    trigger = str(lifecycle.get("action_trigger_event", "")) if lifecycle else "invoke"
    return {
        "address": address,
        "type": str(ai.get("type", "")),
        "trigger": trigger,
        "resource": str(lifecycle.get("triggering_resource_address", "")),
    }


def summarize_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Counts and per-resource address, type, module and action (create, update, delete,
    replace, forget, no-op when the resource only moves or is imported), with
    ``previous_address`` and ``importing``; the actions it invokes; the drift it found.
    Attribute values are left out: they may be secret."""
    add = change = destroy = imports = moves = forgets = 0
    resources: list[dict[str, Any]] = []
    for rc in plan.get("resource_changes") or []:
        actions = list((rc.get("change") or {}).get("actions") or [])
        action = _action(actions)
        item = _resource(rc, action)
        if "create" in actions:
            add += 1
        if "delete" in actions:
            destroy += 1
        if actions == ["update"]:
            change += 1
        if "forget" in actions:
            forgets += 1
        imports += item["importing"]
        moves += bool(item["previous_address"])
        if action not in ("no-op", "read") or item["importing"] or item["previous_address"]:
            resources.append(item)
    drift = [
        _resource(rc, _action(list((rc.get("change") or {}).get("actions") or [])))
        for rc in plan.get("resource_drift") or []
    ]
    invocations = [_invocation(ai) for ai in plan.get("action_invocations") or []]
    output_changes = plan.get("output_changes") or {}
    outputs = sorted(
        name for name, oc in output_changes.items() if (oc.get("actions") or ["no-op"]) != ["no-op"]
    )
    return {
        "add": add,
        "change": change,
        "destroy": destroy,
        "import_count": imports,
        "move_count": moves,
        "forget_count": forgets,
        "invoke_count": len(invocations),
        "drift_count": len(drift),
        "resources": resources,
        "action_invocations": invocations,
        "drift": drift,
        "outputs_changed": outputs,
        "terraform_version": plan.get("terraform_version", ""),
    }


def has_changes(summary: dict[str, Any]) -> bool:
    """Whether applying the plan changes anything: resources (state-only changes
    included), outputs, or actions it invokes."""
    return bool(
        summary.get("resources") or summary.get("outputs_changed") or summary.get("invoke_count")
    )


def summary_line(summary: dict[str, Any]) -> str:
    """The counts as Terraform words them ("1 to import, 0 to add, ..."), with what only
    the portal counts (moves, forgets) after them; zero imports, moves, forgets and actions
    are left out, as Terraform leaves them out."""
    parts = [f"{summary.get('import_count', 0)} to import"] if summary.get("import_count") else []
    parts += [
        f"{summary.get('add', 0)} to add",
        f"{summary.get('change', 0)} to change",
        f"{summary.get('destroy', 0)} to destroy",
    ]
    for key, verb in (("move_count", "move"), ("forget_count", "forget")):
        if summary.get(key):
            parts.append(f"{summary[key]} to {verb}")
    line = ", ".join(parts)
    invoked = summary.get("invoke_count") or 0
    if invoked:
        line += f"; {invoked} action{'s' if invoked != 1 else ''} to invoke"
    return line


def sensitive_values(plan: dict[str, Any]) -> list[str]:
    """Every string value Terraform marks sensitive, so the redactor can mask it in later logs."""
    found: list[str] = []
    root = ((plan.get("configuration") or {}).get("root_module") or {}).get("variables") or {}
    for name, var in (plan.get("variables") or {}).items():
        if (root.get(name) or {}).get("sensitive"):
            _collect_strings(var.get("value"), found)
    # Drift is printed too ("Objects have changed outside of Terraform"), with its values.
    changes = [*(plan.get("resource_changes") or []), *(plan.get("resource_drift") or [])]
    changes += [d.get("resource_change") or {} for d in plan.get("deferred_changes") or []]
    for rc in changes:
        change = rc.get("change") or {}
        for values_key, marks_key in (("after", "after_sensitive"), ("before", "before_sensitive")):
            _collect_marked(change.get(values_key), change.get(marks_key), found)
    for ai in plan.get("action_invocations") or []:
        _collect_marked(ai.get("config_values"), ai.get("config_sensitive"), found)
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
