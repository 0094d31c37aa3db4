"""Reading `terraform show -json <planfile>` into a summary that holds no values.

Besides what a plan creates, changes and destroys, a plan changes Terraform's state
without touching the cloud (imports, ``moved`` blocks, ``removed`` blocks that forget a
resource) and may invoke actions (Terraform 1.14+: a Lambda invoked, instances stopped)
whose effects no resource change shows. Applying such a plan is a change all the same,
so each is counted and listed: a move-only plan is not "+0 ~0 -0, nothing to do".
Changes Terraform noticed outside itself (``resource_drift``) are listed apart: applying
the plan does not make them, it only records them.

Format: https://developer.hashicorp.com/terraform/internals/json-format

The plan's JSON is as large as the commit makes it (an output of 30 MB is one line of
HCL), so the worker reads it as a stream (ijson, :func:`read_plan_json`): one resource
change, output or action at a time, its sensitive values collected and its other values
dropped at once; the summary keeps at most SUMMARY_MAX_RESOURCES entries per list, of
names of at most NAME_MAX_CHARS.
"""

from __future__ import annotations

from typing import IO, Any

import ijson

from deployments.terraform.diff import DiffBudget, resource_diff

# What a stored summary may hold: enough for any real review, bounded for a hostile one.
SUMMARY_MAX_RESOURCES = 2000
NAME_MAX_CHARS = 512


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


# --- read as a stream ---------------------------------------------------------------------


def _name(value: Any) -> str:
    text = str(value)
    return text if len(text) <= NAME_MAX_CHARS else text[: NAME_MAX_CHARS - 1] + "…"


def _light_change(rc: dict[str, Any]) -> dict[str, Any]:
    """A resource change without its values: what summarize_plan reads, names capped."""
    change = rc.get("change") or {}
    light: dict[str, Any] = {
        key: _name(rc[key])
        for key in ("address", "type", "module_address", "previous_address")
        if rc.get(key) is not None
    }
    light["change"] = {
        "actions": [str(a) for a in change.get("actions") or []],
        "importing": {} if change.get("importing") is not None else None,
    }
    return light


def _light_invocation(ai: dict[str, Any]) -> dict[str, Any]:
    lifecycle = ai.get("lifecycle_action_trigger") or {}
    light: dict[str, Any] = {
        key: _name(ai[key]) for key in ("address", "action_address", "type") if ai.get(key)
    }
    if lifecycle:
        light["lifecycle_action_trigger"] = {
            key: _name(lifecycle.get(key, ""))
            for key in ("action_trigger_event", "triggering_resource_address")
        }
    return light


def read_plan_json(stream: IO[bytes]) -> tuple[dict[str, Any], list[str]]:
    """The summary and the sensitive values of `show -json`'s output, read as a stream
    (each pass re-reads the file; a value is in memory only while its object is).
    ValueError when it is not JSON."""
    found: list[str] = []
    try:
        version = next(ijson.items(_rewound(stream), "terraform_version"), "")
        declared = {
            name: bool((var or {}).get("sensitive"))
            for name, var in ijson.kvitems(_rewound(stream), "configuration.root_module.variables")
        }
        for name, var in ijson.kvitems(_rewound(stream), "variables"):
            if declared.get(name):
                _collect_strings((var or {}).get("value"), found)
        light: dict[str, Any] = {"terraform_version": _name(version)}
        budget, diffs = DiffBudget(), []
        for key, prefix in (
            ("resource_changes", "resource_changes.item"),
            ("resource_drift", "resource_drift.item"),
            ("deferred_changes", "deferred_changes.item.resource_change"),
        ):
            kept = []
            for rc in ijson.items(_rewound(stream), prefix):
                change = (rc or {}).get("change") or {}
                for values_key, marks_key in (
                    ("after", "after_sensitive"),
                    ("before", "before_sensitive"),
                ):
                    _collect_marked(change.get(values_key), change.get(marks_key), found)
                if key != "deferred_changes":
                    kept.append(_light_change(rc or {}))
                if key == "resource_changes" and _reviewed(rc or {}):
                    diffs.append(budget.take(resource_diff(rc or {})))
            light[key] = kept
        invocations = []
        for ai in ijson.items(_rewound(stream), "action_invocations.item"):
            _collect_marked(ai.get("config_values"), ai.get("config_sensitive"), found)
            invocations.append(_light_invocation(ai))
        light["action_invocations"] = invocations
        outputs = {}
        for name, oc in ijson.kvitems(_rewound(stream), "output_changes"):
            if oc.get("after_sensitive") is True or oc.get("before_sensitive") is True:
                _collect_strings(oc.get("after"), found)
                _collect_strings(oc.get("before"), found)
            outputs[_name(name)] = {"actions": oc.get("actions")}
        light["output_changes"] = outputs
    except ijson.JSONError as exc:
        raise ValueError(str(exc)) from None
    summary = summarize_plan(light)
    # Per resource, its attributes before and after, masked (terraform.diff); the runner
    # passes them through its redactor too.
    summary["diffs"] = diffs[:SUMMARY_MAX_RESOURCES]
    return cap_summary(summary), found


def _reviewed(rc: dict[str, Any]) -> bool:
    """A change the summary lists (summarize_plan's rule): its diff is kept."""
    change = rc.get("change") or {}
    actions = list(change.get("actions") or [])
    return (
        _action(actions) not in ("no-op", "read")
        or change.get("importing") is not None
        or bool(rc.get("previous_address") and rc.get("previous_address") != rc.get("address"))
    )


def cap_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Each list of the summary at most SUMMARY_MAX_RESOURCES long; what was left out is
    counted under ``truncated`` (the counts themselves stay exact)."""
    truncated = {}
    for key in ("resources", "drift", "action_invocations", "outputs_changed"):
        items = summary.get(key)
        if isinstance(items, list) and len(items) > SUMMARY_MAX_RESOURCES:
            truncated[key] = len(items) - SUMMARY_MAX_RESOURCES
            summary[key] = items[:SUMMARY_MAX_RESOURCES]
    if truncated:
        summary["truncated"] = truncated
    return summary


def state_fingerprint(stream: IO[bytes], *, strict: bool = False) -> str:
    """``lineage/serial`` of a state document read as a stream ("" for no state). With
    ``strict``, ValueError unless both are there with their types (a saved plan's)."""
    if not _rewound(stream).read(64).strip():
        if strict:
            raise ValueError("not a state")
        return ""  # `state pull` of a workspace without state prints nothing
    try:
        found: dict[str, Any] = {}
        for prefix, event, value in ijson.parse(_rewound(stream)):
            if prefix in ("lineage", "serial") and event in ("string", "number"):
                found[prefix] = value
                if len(found) == 2:
                    break
    except ijson.JSONError as exc:
        raise ValueError(str(exc)) from None
    lineage, serial = found.get("lineage", ""), found.get("serial", "")
    if strict:
        if not isinstance(lineage, str) or isinstance(serial, bool) or not isinstance(serial, int):
            raise ValueError("not a state")
        # An empty workspace has no state: Terraform plans against a blank one.
        return f"{lineage}/{serial}" if lineage else ""
    if not found:
        return ""
    return f"{lineage}/{serial}"


def _rewound(stream: IO[bytes]) -> IO[bytes]:
    if stream.seekable():
        stream.seek(0)
    return stream
