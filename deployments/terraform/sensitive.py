"""Learning the secret values of a Terraform configuration before Terraform runs.

Terraform only hides a ``sensitive`` variable's value where it knows to, and it does
not know to in every message: a failed validation rule quotes the var-file line that
set the value, for instance. So before any command runs, the portal reads the
configuration itself (deployments.terraform.configuration) to find every variable
declared ``sensitive = true`` or ``ephemeral = true`` (an ephemeral value is a
short-lived secret: a token, a password) in the root module and in the local modules
it calls (beside it or elsewhere in the repository), and collects their values from the
var-file, the files Terraform loads on its own (``terraform.tfvars``,
``*.auto.tfvars``), ``TF_VAR_<name>`` and the defaults.

A root variable is secret also when the root passes it to a sensitive input of a local
module. Where the argument says exactly which part of the variable flows into the input,
only that part is masked (see :func:`_flows`): ``password = var.db.password`` masks the
password, not the host beside it; ``keys = {for k, v in var.extensions : k => v.api_key}``
masks each extension's key, not its name. Any other expression masks every variable it
references, whole (at the part it names statically: ``var.secrets[var.env]`` masks all of
``var.secrets``).

When a file cannot be parsed the portal cannot be sure which variables are sensitive,
so it fails closed: every string value in the var-files and every ``TF_VAR_`` is treated
as a secret, and the file is skimmed so that the defaults of its sensitive variables (and
everything in a variable block that never closes) are masked too. Pure functions only:
files in, strings out.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployments.terraform import configuration
from deployments.terraform.configuration import (
    LOCAL_SOURCE,
    MAX_DEPTH,
    SKIMMED,
    ModuleFiles,
    blocks,
    hcl_loads,
    module_calls,
    module_files,
    unquote,
)

# Longer expressions are not narrowed (masked whole): the patterns below backtrack.
_NARROW_MAX = 2_000
# A path into a value: attribute or map keys, list indexes, "*" for every element.
Step = str | int
ValuePath = tuple[Step, ...]
WHOLE: ValuePath = ()
_NAME = r"[A-Za-z_][\w-]*"
_VAR_REF = re.compile(rf"\bvar\.({_NAME})")
# One static step after a name: .attr, [0], ["key"].
_STEP = re.compile(rf'\.({_NAME})|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
# var.NAME followed by static steps; the rest (a dynamic index, a call) is not part of it.
_STATIC_REF = re.compile(rf'\bvar\.({_NAME})((?:\.{_NAME}|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*)')
# {for k, v in var.X… : k => v…} and [for v in var.X… : v…], an `if` clause allowed.
_FOR = re.compile(
    rf"^(?P<open>[{{\[])\s*for\s+(?:(?P<key>{_NAME})\s*,\s*)?(?P<item>{_NAME})\s+in\s+"
    rf"(?P<source>var\.\S+?)\s*:\s*(?:(?P<keyexpr>{_NAME})\s*=>\s*)?(?P<value>\S+?)"
    rf"(?:\s+if\s+.+?)?\s*[}}\]]$",
    re.DOTALL,
)
# var.X…[*].attr…: every element's attribute.
_SPLAT = re.compile(r"^(?P<source>var\.\S+?)\[\*\](?P<rest>(?:\.[A-Za-z_][\w-]*)*)$")


def sensitive_values(
    config_dir: Path,
    var_files: Iterable[Path] = (),
    env: Mapping[str, str] | None = None,
    *,
    repo_root: Path | None = None,
) -> list[str]:
    """Every value of a sensitive variable of the root module at ``config_dir``.

    ``var_files`` are the ``-var-file`` arguments (relative to nothing: real paths);
    ``env`` is the environment Terraform runs with (for ``TF_VAR_<name>``); ``repo_root``
    bounds the local modules followed (the exported repository; default: the root).
    """
    env = env or {}
    files = [*_automatic_var_files(config_dir), *(f for f in var_files if f.is_file())]
    reading = _Reading(repo_root=(repo_root or config_dir).resolve())
    paths = reading.module(config_dir.resolve(), depth=0)
    found = reading.found
    if not reading.exact:
        # Fail closed: without every declaration, every assigned value may be a secret.
        for path in files:
            _collect_strings(_read_var_file(path, names=None), found)
        found.extend(value for key, value in env.items() if key.startswith("TF_VAR_"))
        return _unique(found)
    for path in files:
        assigned = _read_var_file(path, names=set(paths))
        for name, wanted in paths.items():
            _collect_paths(assigned.get(name), wanted, found)
    for name, wanted in paths.items():
        value = env.get(f"TF_VAR_{name}")
        if not value:
            continue
        # Complex values in TF_VAR_ are HCL or JSON; a plain string is not HCL. Masked
        # whole unless it parses and only parts of it are secret.
        parsed: Any = None
        with contextlib.suppress(Exception):
            parsed = hcl_loads(f"v = {value}\n").get("v")
        if wanted == {WHOLE} or not isinstance(parsed, dict | list):
            found.append(value)
            _collect_strings(parsed, found)
        else:
            _collect_paths(parsed, wanted, found)
    return _unique(found)


@dataclass
class _Reading:
    """One walk of a root and its local modules: what each module's secret inputs are."""

    repo_root: Path
    found: list[str] = field(default_factory=list)
    exact: bool = True
    # Each module directory is read once, however many calls reach it (a hostile
    # configuration could fan calls out exponentially); a cycle reads as nothing.
    known: dict[Path, dict[str, set[ValuePath]]] = field(default_factory=dict)

    def module(self, module_dir: Path, *, depth: int) -> dict[str, set[ValuePath]]:
        """The module's variables whose values are secret, each with the parts of it that
        are (``{WHOLE}``: all of it): declared sensitive or ephemeral, or passed on to a
        secret input of a local module. Defaults and literal secret module arguments are
        appended to ``found``."""
        if depth > MAX_DEPTH:
            return {}
        if module_dir in self.known:
            return self.known[module_dir]
        self.known[module_dir] = {}  # while it is read: a call back to it finds nothing
        files = module_files(module_dir)
        self.exact = self.exact and files.exact
        variables = _variables(files)
        secret: dict[str, set[ValuePath]] = {
            name: {WHOLE}
            for name, body in variables.items()
            if body.get("sensitive") in (True, "true") or body.get("ephemeral") in (True, "true")
        }
        for call in module_calls(files).values():
            source = call.get("source")
            if not isinstance(source, str) or not source.startswith(LOCAL_SOURCE):
                continue  # registry and remote modules: Terraform fetches them
            child = (module_dir / source).resolve()
            if not child.is_dir() or not child.is_relative_to(self.repo_root):
                continue  # refused by the export (configuration.local_module_dirs)
            for input_name, wanted in self.module(child, depth=depth + 1).items():
                argument = call.get(input_name)
                if argument is None:
                    continue
                if call.get(SKIMMED):
                    flows = _whole_refs(json.dumps(argument))
                else:
                    flows = _flows(argument, wanted)
                for name, parts in flows.items():
                    _merge(secret, name, parts)
                # A literal passed in (or one element of a constructor): itself a secret.
                _collect_literals(argument, {WHOLE} if call.get(SKIMMED) else wanted, self.found)
        for name, parts in secret.items():
            _collect_paths(
                variables.get(name, {}).get("default"), parts, self.found, literal_only=True
            )
        self.known[module_dir] = secret
        return secret


def _variables(files: ModuleFiles) -> dict[str, dict[str, Any]]:
    variables: dict[str, dict[str, Any]] = {}
    for document in files.documents:
        for block in blocks(document.get("variable")):
            for name, body in block.items():
                variables[unquote(name)] = body if isinstance(body, dict) else {}
    return variables


def _merge(secret: dict[str, set[ValuePath]], name: str, parts: set[ValuePath]) -> None:
    current = secret.setdefault(name, set())
    current |= parts
    if WHOLE in current:
        current.intersection_update({WHOLE})


# --- which parts of which variables flow into a secret input ---------------------------


def _flows(argument: Any, wanted: set[ValuePath]) -> dict[str, set[ValuePath]]:
    """The variables (and their parts) that an argument passes into the ``wanted`` parts
    of a module input.

    The rule, narrowest first:

    - an object or tuple constructor (``{ password = var.db.password, host = "h" }``):
      each element is followed only into the parts of the input it becomes;
    - a reference with static steps (``var.db.password``, ``var.ext["stripe"].key``): that
      part of the variable, extended by the input's wanted parts;
    - a projection of every element (``[for v in var.l : v.key]``,
      ``{for k, v in var.m : k => v.key}``, ``var.l[*].key``): that attribute of every
      element. Map keys stay readable: Terraform itself refuses to use a sensitive
      value's keys where they would show (``for_each``), and the root shows these;
    - anything else (a function call, a conditional, a template, a key derived from the
      value): every variable it references, whole at its static part.
    """
    if isinstance(argument, dict):
        out: dict[str, set[ValuePath]] = {}
        for key, value in argument.items():
            under = _under(wanted, unquote(key))
            if under:
                for name, parts in _flows(value, under).items():
                    _merge(out, name, parts)
            if WHOLE in wanted:  # a computed key is part of the whole value
                for name, parts in _whole_refs(key).items():
                    _merge(out, name, parts)
        return out
    if isinstance(argument, list):
        out = {}
        for index, value in enumerate(argument):
            under = _under(wanted, index)
            for name, parts in _flows(value, under).items() if under else ():
                _merge(out, name, parts)
        return out
    if not isinstance(argument, str):
        return {}
    expression = _single_expression(argument) if len(argument) <= _NARROW_MAX else None
    if expression is not None:
        narrowed = _reference(expression) or _projection(expression)
        if narrowed is not None:
            name, prefix = narrowed
            return {name: {prefix + part for part in wanted}}
    return _whole_refs(argument)


def _under(wanted: set[ValuePath], step: Step) -> set[ValuePath]:
    """The wanted parts below one step of the value."""
    out: set[ValuePath] = set()
    for part in wanted:
        if part == WHOLE:
            out.add(WHOLE)
        elif part[0] == step or part[0] == "*":
            out.add(part[1:])
    return out


def _single_expression(text: str) -> str | None:
    """The expression of a string that is one interpolation (``"${...}"``), else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    inner = text[2:-1].strip()
    # "${a}-${b}" is a template of two: the braces must balance inside.
    depth = 0
    for char in inner:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return None
    return inner if depth == 0 else None


def _steps(text: str) -> ValuePath | None:
    steps: list[Step] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if not match:
            return None
        attr, index, key = match.groups()
        if attr is not None:
            steps.append(attr)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(json.loads(f'"{key}"'))
        position = match.end()
    return tuple(steps)


def _reference(expression: str) -> tuple[str, ValuePath] | None:
    """``var.NAME`` with static steps only: (NAME, steps)."""
    match = re.fullmatch(rf"var\.({_NAME})(.*)", expression.strip(), re.DOTALL)
    if not match:
        return None
    steps = _steps(match.group(2))
    return None if steps is None else (match.group(1), steps)


def _projection(expression: str) -> tuple[str, ValuePath] | None:
    """An attribute of every element of ``var.NAME…``: (NAME, steps + ("*",) + attr)."""
    splat = _SPLAT.match(expression.strip())
    if splat:
        source = _reference(splat.group("source"))
        rest = _steps(splat.group("rest"))
        if source is None or rest is None:
            return None
        return source[0], (*source[1], "*", *rest)
    loop = _FOR.match(expression.strip())
    if not loop:
        return None
    source = _reference(loop.group("source"))
    is_map = loop.group("open") == "{"
    if source is None or is_map != (loop.group("keyexpr") is not None):
        return None
    if is_map:
        # The map's keys must be the collection's own keys: a key computed from the
        # element would put (part of) the secret in the keys.
        key_var = loop.group("key")
        if key_var is None or loop.group("keyexpr") != key_var:
            return None
    value = re.fullmatch(rf"({_NAME})(.*)", loop.group("value"), re.DOTALL)
    if not value or value.group(1) != loop.group("item"):
        return None
    rest = _steps(value.group(2))
    if rest is None:
        return None
    return source[0], (*source[1], "*", *rest)


def _whole_refs(text: str) -> dict[str, set[ValuePath]]:
    """Every variable an expression references, whole at the part it names statically."""
    out: dict[str, set[ValuePath]] = {}
    for match in _STATIC_REF.finditer(text):
        steps = _steps(match.group(2)) or WHOLE
        _merge(out, match.group(1), {steps})
    return out


# --- values -------------------------------------------------------------------------


def _automatic_var_files(config_dir: Path) -> list[Path]:
    """The variables files Terraform loads without being asked, in its order."""
    names = ["terraform.tfvars", "terraform.tfvars.json"]
    auto = sorted(
        p.name
        for p in config_dir.glob("*.auto.tfvars*")
        if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))
    )
    return [config_dir / name for name in [*names, *auto] if (config_dir / name).is_file()]


def _read_var_file(path: Path, *, names: set[str] | None) -> dict[str, Any]:
    """A variables file as a dict; on a parse error, the ``name = "value"`` lines found
    line by line (Terraform will quote the broken file, so its values must be known)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    loaded: Any = None
    with contextlib.suppress(Exception):  # then the line-level reading below
        loaded = json.loads(text) if path.name.endswith(".json") else hcl_loads(text)
    if isinstance(loaded, dict):
        return loaded
    assigned: dict[str, Any] = {}
    for match in re.finditer(r'(?m)^\s*"?([\w-]+)"?\s*[=:]\s*"((?:[^"\\\n]|\\.)*)"', text):
        if names is None or match.group(1) in names:
            assigned.setdefault(match.group(1), []).append(match.group(2))
    return assigned


def _collect_paths(
    value: Any, paths: Iterable[ValuePath], found: list[str], *, literal_only: bool = False
) -> None:
    for path in paths:
        _collect_at(value, path, found, literal_only=literal_only)


def _collect_at(value: Any, path: ValuePath, found: list[str], *, literal_only: bool) -> None:
    """The strings at ``path`` inside ``value``. Where the value's shape is not the one the
    path expects (a string where an object should be), all of it: it is what was assigned
    to a secret, and Terraform may quote it when it refuses it."""
    if value is None:
        return
    if not path:
        _collect_strings(value, found, literal_only=literal_only)
        return
    step, rest = path[0], path[1:]
    if step == "*" and isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            _collect_at(item, rest, found, literal_only=literal_only)
    elif isinstance(step, int) and isinstance(value, list):
        if 0 <= step < len(value):
            _collect_at(value[step], rest, found, literal_only=literal_only)
    elif isinstance(step, str) and step != "*" and isinstance(value, dict):
        for key, item in value.items():
            if unquote(str(key)) == step:
                _collect_at(item, rest, found, literal_only=literal_only)
    elif isinstance(value, str) and literal_only and "${" in value:
        # A default that is an expression: its literal parts, as for a whole value.
        _collect_strings(value, found, literal_only=True)
    else:
        _collect_strings(value, found, literal_only=literal_only)


def _collect_literals(argument: Any, wanted: set[ValuePath], found: list[str]) -> None:
    """The literal strings an argument passes into the wanted parts of an input; strings
    with an interpolation are the referenced variables' (followed by _flows)."""
    if isinstance(argument, str):
        if "${" not in argument:
            found.append(argument)
    elif isinstance(argument, dict | list):
        items = argument.items() if isinstance(argument, dict) else enumerate(argument)
        for key, item in items:
            under = _under(wanted, unquote(key) if isinstance(key, str) else key)
            if under:
                _collect_literals(item, under, found)


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


def _module_documents(module_dir: Path) -> list[dict[str, Any]]:
    """The module's documents (a copy each call; kept for the cache's tests)."""
    return configuration.module_files(module_dir, copy_documents=True).documents
