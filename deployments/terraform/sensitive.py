"""Learning the secret values of a Terraform configuration before Terraform runs.

Terraform only hides a ``sensitive`` variable's value where it knows to, and it does
not know to in every message: a failed validation rule quotes the var-file line that
set the value, for instance. So before any command runs, the portal reads the
configuration itself (with python-hcl2) to find every variable declared
``sensitive = true`` in the root module and in the local modules under it, and
collects their values from the var-file, the files Terraform loads on its own
(``terraform.tfvars``, ``*.auto.tfvars``), ``TF_VAR_<name>`` and the defaults.

When the configuration cannot be parsed the portal cannot tell which variables are
sensitive, so it fails closed: every string value in the var-files is treated as a
secret. Pure functions only: files in, strings out.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import hcl2

_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    explicit_blocks=False,
    preserve_heredocs=False,
    strip_string_quotes=True,
)
# python-hcl2 keeps its serialisation state in a default argument shared by every
# call, so two threads reading at once see each other's state (quotes kept on
# strings). One reader at a time.
_HCL_LOCK = threading.Lock()
_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
# A module nested deeper than this is a cycle or a mistake; stop following it.
_MAX_DEPTH = 16


class _Unparseable(Exception):
    """A configuration or variables file python-hcl2 cannot read."""


def sensitive_values(
    config_dir: Path, var_files: Iterable[Path] = (), env: Mapping[str, str] | None = None
) -> list[str]:
    """Every value of a sensitive variable of the root module at ``config_dir``.

    ``var_files`` are the ``-var-file`` arguments (relative to nothing: real paths);
    ``env`` is the environment Terraform runs with (for ``TF_VAR_<name>``).
    """
    env = env or {}
    files = [*_automatic_var_files(config_dir), *(f for f in var_files if f.is_file())]
    found: list[str] = []
    try:
        names = _sensitive_names(config_dir, config_dir, found, depth=0)
    except _Unparseable:
        # Fail closed: without the declarations every assigned value may be a secret.
        for path in files:
            _collect_strings(_read_var_file(path, names=None), found)
        found.extend(value for key, value in env.items() if key.startswith("TF_VAR_"))
        return _unique(found)
    for path in files:
        assigned = _read_var_file(path, names=names)
        for name in names:
            _collect_strings(assigned.get(name), found)
    for name in names:
        value = env.get(f"TF_VAR_{name}")
        if value:
            found.append(value)
            # Complex values in TF_VAR_ are HCL or JSON; their strings are secrets too.
            # A plain string is not HCL: it is kept whole above.
            with contextlib.suppress(Exception):
                _collect_strings(_hcl_loads(f"v = {value}\n"), found)
    return _unique(found)


def _automatic_var_files(config_dir: Path) -> list[Path]:
    """The variables files Terraform loads without being asked, in its order."""
    names = ["terraform.tfvars", "terraform.tfvars.json"]
    auto = sorted(
        p.name
        for p in config_dir.glob("*.auto.tfvars*")
        if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))
    )
    return [config_dir / name for name in [*names, *auto] if (config_dir / name).is_file()]


def _sensitive_names(module_dir: Path, root: Path, found: list[str], *, depth: int) -> set[str]:
    """Names of the module's variables whose values are secret: declared sensitive, or
    passed on to a sensitive variable of a local module. Defaults and literal secret
    module arguments are appended to ``found``."""
    if depth > _MAX_DEPTH:
        return set()
    variables: dict[str, dict[str, Any]] = {}
    modules: dict[str, dict[str, Any]] = {}
    for document in _module_documents(module_dir):
        for block in _blocks(document.get("variable")):
            for name, body in block.items():
                variables[_unquote(name)] = body if isinstance(body, dict) else {}
        for block in _blocks(document.get("module")):
            for name, body in block.items():
                if isinstance(body, dict):
                    modules[_unquote(name)] = body
    names = {name for name, body in variables.items() if body.get("sensitive") in (True, "true")}
    for module in modules.values():
        source = module.get("source")
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            continue  # registry and remote modules are not in the export
        child = (module_dir / source).resolve()
        if not child.is_dir() or not child.is_relative_to(root.resolve()):
            continue
        for input_name in _sensitive_names(child, root, found, depth=depth + 1):
            argument = module.get(input_name)
            if argument is None:
                continue
            refs = _VAR_REF.findall(json.dumps(argument))
            names.update(refs)
            if not refs:
                _collect_strings(argument, found, literal_only=True)
    for name in names:
        _collect_strings(variables.get(name, {}).get("default"), found, literal_only=True)
    return names


def _module_documents(module_dir: Path) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(module_dir.glob("*.tf")):
        try:
            documents.append(copy.deepcopy(_parsed_configuration(path.read_text())))
        except Exception as exc:  # any parser failure means "unknown"
            raise _Unparseable(str(path)) from exc
    for path in sorted(module_dir.glob("*.tf.json")):
        try:
            documents.append(json.loads(path.read_text()))
        except ValueError as exc:
            raise _Unparseable(str(path)) from exc
    return documents


def _read_var_file(path: Path, *, names: set[str] | None) -> dict[str, Any]:
    """A variables file as a dict; on a parse error, the ``name = "value"`` lines found
    line by line (Terraform will quote the broken file, so its values must be known)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    loaded: Any = None
    with contextlib.suppress(Exception):  # then the line-level reading below
        loaded = json.loads(text) if path.name.endswith(".json") else _hcl_loads(text)
    if isinstance(loaded, dict):
        return loaded
    assigned: dict[str, Any] = {}
    for match in re.finditer(r'(?m)^\s*"?([\w-]+)"?\s*[=:]\s*"((?:[^"\\\n]|\\.)*)"', text):
        if names is None or match.group(1) in names:
            assigned.setdefault(match.group(1), []).append(match.group(2))
    return assigned


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


@functools.lru_cache(maxsize=512)
def _parsed_configuration(text: str) -> dict[str, Any]:
    """A configuration file (``*.tf``) parsed, remembered by its content.

    Parsing is most of the ~0.3 s this module takes per run; a configuration rarely
    changes between runs (a plan, its apply and its check read the same files, and most
    files stay the same across commits). Keyed by the whole text, so a changed file is
    parsed again; callers get a copy. Variables files, which hold the values, are not kept.
    """
    return _hcl_loads(text)


def _hcl_loads(text: str) -> dict[str, Any]:
    with _HCL_LOCK:
        return hcl2.loads(text, serialization_options=_OPTIONS)


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _collect_strings(value: Any, found: list[str], *, literal_only: bool = False) -> None:
    """Every string inside ``value`` (nested maps and lists included)."""
    if isinstance(value, str):
        # An expression (``${...}``) is not a value; its literal parts may still be.
        if literal_only and "${" in value:
            found.extend(part for part in re.split(r"\$\{[^}]*\}", value) if part.strip())
        else:
            found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, found, literal_only=literal_only)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, found, literal_only=literal_only)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
