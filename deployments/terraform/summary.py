"""Reading `terraform show -json <planfile>` into a summary that holds no values.

The plan's JSON is as large as the commit makes it (an output of 30 MB is one line of
HCL), so it is read as a stream (ijson): one resource change or output at a time, and
the summary keeps at most SUMMARY_MAX_RESOURCES entries of at most NAME_MAX_CHARS each.
"""

from __future__ import annotations

from typing import IO, Any

import ijson  # type: ignore[import-untyped]

# What a stored summary may hold: enough for any real review, bounded for a hostile one.
SUMMARY_MAX_RESOURCES = 2000
NAME_MAX_CHARS = 512


def _action(actions: list[str]) -> str:
    if actions == ["no-op"] or actions == ["read"]:
        return actions[0]
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    return actions[0] if len(actions) == 1 else "+".join(actions)


def _name(value: Any) -> str:
    text = str(value)
    return text if len(text) <= NAME_MAX_CHARS else text[: NAME_MAX_CHARS - 1] + "…"


def summarize_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Counts and per-resource address, type, module and action (create, update, delete,
    replace). Attribute values are left out: they may be secret."""
    return _summary(
        plan.get("resource_changes") or [],
        (plan.get("output_changes") or {}).items(),
        str(plan.get("terraform_version", "")),
    )


def _summary(resource_changes: Any, output_changes: Any, terraform_version: str) -> dict[str, Any]:
    add = change = destroy = 0
    resources: list[dict[str, str]] = []
    left_out = 0
    for rc in resource_changes:
        actions = list((rc.get("change") or {}).get("actions") or [])
        action = _action(actions)
        if "create" in actions:
            add += 1
        if "delete" in actions:
            destroy += 1
        if actions == ["update"]:
            change += 1
        if action not in ("no-op", "read"):
            if len(resources) >= SUMMARY_MAX_RESOURCES:
                left_out += 1
                continue
            resources.append(
                {
                    "address": _name(rc.get("address", "")),
                    "type": _name(rc.get("type", "")),
                    "module": _name(rc.get("module_address", "")),
                    "action": action,
                }
            )
    outputs = sorted(
        _name(name) for name, oc in output_changes if (oc.get("actions") or ["no-op"]) != ["no-op"]
    )
    summary: dict[str, Any] = {
        "add": add,
        "change": change,
        "destroy": destroy,
        "resources": resources,
        "outputs_changed": outputs[:SUMMARY_MAX_RESOURCES],
        "terraform_version": _name(terraform_version),
    }
    if left_out or len(outputs) > SUMMARY_MAX_RESOURCES:
        summary["truncated"] = {
            "resources": left_out,
            "outputs": max(0, len(outputs) - SUMMARY_MAX_RESOURCES),
        }
    return summary


def read_plan_json(stream: IO[bytes]) -> tuple[dict[str, Any], list[str]]:
    """The summary and the sensitive values of `show -json`'s output, read as a stream
    (each pass re-reads the file; a value is in memory only while its object is).
    ValueError when it is not JSON."""
    try:
        version = next(ijson.items(_rewound(stream), "terraform_version"), "")
        declared = {
            name: bool((var or {}).get("sensitive"))
            for name, var in ijson.kvitems(_rewound(stream), "configuration.root_module.variables")
        }
        found: list[str] = []
        for name, var in ijson.kvitems(_rewound(stream), "variables"):
            if declared.get(name):
                _collect_strings((var or {}).get("value"), found)

        def changes() -> Any:
            for rc in ijson.items(_rewound(stream), "resource_changes.item"):
                change = rc.get("change") or {}
                for values_key, marks_key in (
                    ("after", "after_sensitive"),
                    ("before", "before_sensitive"),
                ):
                    _collect_marked(change.get(values_key), change.get(marks_key), found)
                yield rc

        def outputs() -> Any:
            for name, oc in ijson.kvitems(_rewound(stream), "output_changes"):
                if oc.get("after_sensitive") is True or oc.get("before_sensitive") is True:
                    _collect_strings(oc.get("after"), found)
                    _collect_strings(oc.get("before"), found)
                yield name, {"actions": oc.get("actions")}

        return _summary(changes(), list(outputs()), str(version)), found
    except ijson.JSONError as exc:
        raise ValueError(str(exc)) from None


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
