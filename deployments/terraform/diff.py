"""A plan's per-resource attribute diff, values masked, for the ticket page's review.

From one ``resource_changes`` entry of `terraform show -json` (read as a stream by
deployments.terraform.summary) this keeps, per attribute path, the value before and
after, as text the page shows:

- a value Terraform marks sensitive (``before_sensitive`` / ``after_sensitive``, the whole
  object or any part of it) is never kept: it reads ``(sensitive value)``;
- a value not known until apply (``after_unknown``) reads ``(known after apply)``;
- an attribute whose change forces the replacement (``replace_paths``) is flagged.

Every kept value is then passed through the run's redactor (runner.plan), which masks
the variables declared sensitive and anything shaped like a credential, so a secret
Terraform did not mark is masked there too. Bounded: at most ATTRS_MAX_ROWS rows per
resource, VALUE_MAX_CHARS per value, DIFF_MAX_CHARS over the whole plan (later resources
keep their address and action only, ``omitted`` set).

The summary holds these as ``diffs``, one per entry of its ``resources``, in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

SENSITIVE = "(sensitive value)"
UNKNOWN = "(known after apply)"
ATTRS_MAX_ROWS = 200
VALUE_MAX_CHARS = 1_000
DIFF_MAX_CHARS = 2_000_000

Path = tuple[str | int, ...]


def _text(value: Any) -> str:
    """A value as Terraform prints it: strings quoted, numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict | list):
        text = "{}" if isinstance(value, dict) else "[]"
    else:
        text = str(value)
    if len(text) > VALUE_MAX_CHARS:
        text = text[: VALUE_MAX_CHARS - 1] + "…"
    return text


def _path_text(path: Path) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + str(step)
    return out or "(value)"


def _mark_at(marks: Any, path: Path) -> bool:
    """Whether ``marks`` (a *_sensitive or after_unknown tree) marks ``path`` or a parent."""
    node = marks
    for step in path:
        if node is True:
            return True
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return False
    return node is True


def _flatten(value: Any, marks: Any, unknown: Any, path: Path, out: dict[Path, str]) -> None:
    """Leaf paths of ``value`` to their text; a marked subtree is one masked entry."""
    if path and _mark_at(marks, path):
        out[path] = SENSITIVE
        return
    if path and _mark_at(unknown, path):
        out[path] = UNKNOWN
        return
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, marks, unknown, (*path, str(key)), out)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _flatten(item, marks, unknown, (*path, index), out)
    elif path:
        out[path] = _text(value)


def _unknown_paths(unknown: Any, path: Path, out: list[Path]) -> None:
    """Paths ``after_unknown`` marks that ``after`` does not hold (Terraform leaves them out
    of ``after`` when it cannot know them)."""
    if unknown is True and path:
        out.append(path)
    elif isinstance(unknown, dict):
        for key, item in unknown.items():
            _unknown_paths(item, (*path, str(key)), out)
    elif isinstance(unknown, list):
        for index, item in enumerate(unknown):
            _unknown_paths(item, (*path, index), out)


def _replace_paths(change: dict[str, Any]) -> set[Path]:
    paths: set[Path] = set()
    for raw in change.get("replace_paths") or []:
        if isinstance(raw, list):
            paths.add(tuple(s if isinstance(s, int) else str(s) for s in raw))
    return paths


def _forces(path: Path, replace: set[Path]) -> bool:
    return any(path[: len(r)] == r for r in replace if r)


def resource_diff(rc: dict[str, Any]) -> dict[str, Any]:
    """``{"rows": [{"path", "before", "after", "forces_replacement"}], "more"}`` (the
    summary keeps it at the index of the resource in its ``resources``):
    the attributes that change (a create: every attribute it sets; a destroy or forget:
    every attribute it had), values masked as the module docstring says."""
    change = rc.get("change") or {}
    actions = list(change.get("actions") or [])
    before_v, after_v = change.get("before"), change.get("after")
    before: dict[Path, str] = {}
    after: dict[Path, str] = {}
    if before_v is not None:
        _flatten(before_v, change.get("before_sensitive"), None, (), before)
    if after_v is not None or change.get("after_unknown"):
        unknown = change.get("after_unknown")
        _flatten(after_v, change.get("after_sensitive"), unknown, (), after)
        missing: list[Path] = []
        _unknown_paths(unknown, (), missing)
        for path in missing:
            if not _mark_at(change.get("after_sensitive"), path):
                after.setdefault(path, UNKNOWN)
    replace = _replace_paths(change)
    creating = "create" in actions and before_v is None
    deleting = after_v is None and not change.get("after_unknown")
    rows: list[dict[str, Any]] = []
    for path in sorted(set(before) | set(after), key=_sort_key):
        old, new = before.get(path), after.get(path)
        if old == new and not (old == SENSITIVE and _changed_sensitive(before_v, after_v, path)):
            continue
        if creating and new == "null":
            continue  # an unset attribute of a new resource says nothing
        if deleting and old == "null":
            continue
        rows.append(
            {
                "path": _path_text(path),
                "before": old,
                "after": new,
                "forces_replacement": _forces(path, replace),
            }
        )
    more = max(0, len(rows) - ATTRS_MAX_ROWS)
    # Attributes that force the replacement first: they are why it is replaced.
    rows.sort(key=lambda r: not r["forces_replacement"])
    return {"rows": rows[:ATTRS_MAX_ROWS], "more": more}


def _changed_sensitive(before_v: Any, after_v: Any, path: Path) -> bool:
    """Whether a sensitive value changed (compared, never shown)."""
    return _get(before_v, path) != _get(after_v, path)


def _get(value: Any, path: Path) -> Any:
    node = value
    for step in path:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


def _sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple((0, f"{s:08d}") if isinstance(s, int) else (1, s) for s in path)


class DiffBudget:
    """The whole plan's diffs within DIFF_MAX_CHARS: once spent, a resource's diff is
    empty (``omitted``)."""

    def __init__(self, limit: int = DIFF_MAX_CHARS) -> None:
        self.left = limit

    def take(self, diff: dict[str, Any]) -> dict[str, Any]:
        size = sum(
            len(r["path"]) + len(r["before"] or "") + len(r["after"] or "") for r in diff["rows"]
        )
        if size > self.left:
            return {"rows": [], "more": 0, "omitted": True}
        self.left -= size
        return diff


def redact_diffs(diffs: list[dict[str, Any]], redact: Callable[[str], str]) -> list[dict[str, Any]]:
    """Each kept value (and path: a map key may be a secret) through ``redact``."""
    out = []
    for diff in diffs:
        rows = [
            {
                **row,
                "path": redact(row["path"]),
                "before": None if row["before"] is None else redact(row["before"]),
                "after": None if row["after"] is None else redact(row["after"]),
            }
            for row in diff.get("rows") or []
        ]
        out.append({**diff, "rows": rows})
    return out
