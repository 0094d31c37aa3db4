"""Reading a Terraform configuration's files before Terraform runs: parsed by python-hcl2,
or, where it cannot parse a file, skimmed by a tolerant reader that still finds every
``variable`` and ``module`` block; and the local modules a root calls, which must lie
inside the repository.

The skim is for failing safe, not for reading well: it finds blocks anywhere (an unclosed
brace before them does not hide them), reads an attribute's expression as tokens, and
reports a block it cannot close as running to the end of the file. Callers treat what it
returns conservatively (sensitive.py masks more, never less).

Pure functions: files in, data out.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from deployments.terraform.source import (
    SourceError,
)  # source.py imports this module lazily: no cycle

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
# A module nested deeper than this is a cycle or a mistake; stop following it.
MAX_DEPTH = 16
LOCAL_SOURCE = ("./", "../")
# Sources Terraform would copy from the machine it runs on: an absolute path, a file:
# URL, a forced getter on a local path (git::/srv/x).
_LOCAL_FILE_SOURCE = re.compile(r"^\s*[/~]|\bfile:|::\s*[/~]", re.IGNORECASE)
# Marks a module call read by the skim: its arguments are lists of references and literals.
SKIMMED = "__skimmed__"


def hcl_loads(text: str) -> dict[str, Any]:
    with _HCL_LOCK:
        return dict(hcl2.loads(text, serialization_options=_OPTIONS))


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> dict[str, Any]:
    """A configuration file (``*.tf``) parsed, remembered by its content.

    Parsing is most of the ~0.3 s reading a configuration takes per run; a configuration
    rarely changes between runs (a plan, its apply and its check read the same files, and
    most files stay the same across commits). Keyed by the whole text, so a changed file
    is parsed again; callers get a copy. Variables files, which hold values, are not kept.
    """
    return hcl_loads(text)


@dataclass
class ModuleFiles:
    """The documents of one module directory, as python-hcl2 shapes them; ``exact`` is
    False when a file could not be parsed and was skimmed instead."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    exact: bool = True


def module_files(module_dir: Path, *, copy_documents: bool = False) -> ModuleFiles:
    """Every ``*.tf`` and ``*.tf.json`` file of a module directory, parsed or skimmed.

    The parsed documents are the remembered ones, shared: callers read them and never
    change them (``copy_documents`` for one that would; a deep copy costs more than
    reading)."""
    out = ModuleFiles()
    for path in sorted(module_dir.glob("*.tf")):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            out.exact = False
            continue
        try:
            parsed = _parsed(text)
            out.documents.append(copy.deepcopy(parsed) if copy_documents else parsed)
        except Exception:  # any parser failure: read what can be read
            out.exact = False
            out.documents.append(skim(text))
    for path in sorted(module_dir.glob("*.tf.json")):
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            out.exact = False
            continue
        if isinstance(loaded, dict):
            out.documents.append(loaded)
    return out


def blocks(value: Any) -> list[dict[str, Any]]:
    """A block type's entries, as python-hcl2 (a list) or JSON (an object) gives them."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def module_calls(files: ModuleFiles) -> dict[str, dict[str, Any]]:
    """``module`` blocks by name: their arguments, ``source`` included."""
    calls: dict[str, dict[str, Any]] = {}
    for document in files.documents:
        for block in blocks(document.get("module")):
            for name, body in block.items():
                if isinstance(body, dict):
                    calls[unquote(name)] = body
    return calls


# --- the local modules of a root, inside the repository ------------------------------


def local_module_dirs(root: Path, repo_root: Path) -> list[Path]:
    """The root and every local module it calls, directly or through other modules, each
    checked to lie inside ``repo_root``: a ``source = "../../x"`` that leaves the
    repository, or that reaches out through a symbolic link, raises SourceError naming the
    module, the file's directory and the source. Registry and remote sources are
    Terraform's to fetch (into .terraform, inside the run's own directory)."""
    repo = repo_root.resolve()
    seen: list[Path] = []
    pending: list[tuple[Path, int]] = [(root.resolve(), 0)]
    while pending:
        module_dir, depth = pending.pop(0)
        if module_dir in seen or depth > MAX_DEPTH:
            continue
        seen.append(module_dir)
        for name, body in module_calls(module_files(module_dir)).items():
            source = body.get("source")
            if not isinstance(source, str):
                continue
            if _LOCAL_FILE_SOURCE.search(source):
                where = module_dir.relative_to(repo).as_posix() or "."
                raise SourceError(
                    f'module "{name}" in {where}/: source "{source}" names a path on the '
                    "machine, not in the repository; use a relative path (./ or ../) to a "
                    "directory inside the repository, or a registry or remote source"
                )
            if source.startswith(LOCAL_SOURCE):
                pending.append((_inside(module_dir, name, source, repo), depth + 1))
    return seen


def _inside(module_dir: Path, name: str, source: str, repo: Path) -> Path:
    where = module_dir.relative_to(repo).as_posix() or "."
    # Lexically first (the path as written), then as the file system resolves it (links).
    lexical = Path(os.path.normpath(module_dir / source))
    target = (module_dir / source).resolve()
    for path in (lexical, target):
        if not path.is_relative_to(repo):
            raise SourceError(
                f'module "{name}" in {where}/: source "{source}" points outside the '
                "repository; a local module must be a directory inside the repository"
            )
    if not target.is_dir():
        raise SourceError(
            f'module "{name}" in {where}/: source "{source}" is not a directory of the '
            "repository at this commit (a link that points outside the repository is not "
            "exported)"
        )
    return target


# --- the skim: a tolerant reader for files python-hcl2 cannot parse ---------------------

_TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<heredoc><<(?P<dash>-?)(?P<tag>[A-Za-z_][\w-]*)[^\n]*\n
      (?P<body>.*?)(?:^[ \t]*(?P=tag)[ \t]*$|\Z))
    |(?P<string>"(?:[^"\\\n]|\\.)*(?:"|$))
    |(?P<ident>[A-Za-z_][\w-]*)
    |(?P<newline>\n)
    |(?P<punct>[{}\[\]()=,.:?*<>!&|+/%-])
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<space>[ \t\r]+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)
_OPEN = {"{": "}", "[": "]", "(": ")"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind in ("comment", "space"):
            continue
        if kind == "heredoc":
            body = match.group("body") or ""
            # <<-EOT strips the common indentation, as Terraform does.
            out.append(_Tok("string", textwrap.dedent(body) if match.group("dash") else body))
        elif kind == "string":
            raw = match.group("string")
            out.append(_Tok("string", _string_text(raw)))
        elif kind not in ("dash", "tag", "body"):
            out.append(_Tok(kind, match.group(kind)))
    return out


def _string_text(raw: str) -> str:
    body = raw[1:-1] if len(raw) >= 2 and raw.endswith('"') else raw[1:]
    try:
        return str(json.loads(f'"{body}"'))
    except ValueError:
        return body


def _body(tokens: list[_Tok], start: int) -> tuple[list[_Tok], int, bool]:
    """The tokens between the bracket at ``start`` and its match (or the end of the file),
    the index after it, and whether it was matched."""
    depth = 0
    for index in range(start, len(tokens)):
        tok = tokens[index]
        if tok.kind == "punct" and tok.text in _OPEN:
            depth += 1
        elif tok.kind == "punct" and tok.text in "}])":
            depth -= 1
            if depth == 0:
                return tokens[start + 1 : index], index + 1, True
    return tokens[start + 1 :], len(tokens), False


def _attributes(body: list[_Tok]) -> dict[str, list[_Tok]]:
    """``name = expression`` at the top of a block body; each expression's tokens run to
    the end of its line (brackets may span lines)."""
    attrs: dict[str, list[_Tok]] = {}
    index = 0
    while index < len(body):
        tok = body[index]
        nxt = body[index + 1] if index + 1 < len(body) else None
        if tok.kind == "ident" and nxt is not None and nxt.kind == "punct" and nxt.text == "=":
            expression: list[_Tok] = []
            depth = 0
            index += 2
            while index < len(body):
                cur = body[index]
                if cur.kind == "newline" and depth == 0:
                    break
                if cur.kind == "punct" and cur.text in _OPEN:
                    depth += 1
                elif cur.kind == "punct" and cur.text in "}])":
                    depth -= 1
                expression.append(cur)
                index += 1
            attrs[tok.text] = expression
            continue
        if tok.kind == "punct" and tok.text in _OPEN:  # a nested block or stray bracket
            _, index, _closed = _body(body, index)
            continue
        index += 1
    return attrs


def _strings(tokens: list[_Tok]) -> list[str]:
    return [tok.text for tok in tokens if tok.kind == "string"]


def _var_refs(tokens: list[_Tok]) -> list[str]:
    refs = []
    for index in range(len(tokens) - 2):
        a, dot, name = tokens[index : index + 3]
        if a.kind == "ident" and a.text == "var" and dot.text == "." and name.kind == "ident":
            refs.append(name.text)
    # Inside strings (templates), references are text.
    for text in _strings(tokens):
        refs += re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text)
    return refs


def _found_blocks(tokens: list[_Tok], kind: str) -> Iterator[tuple[str, list[_Tok], bool]]:
    """Every ``<kind> "<name>" {`` anywhere in the file: (name, body, closed)."""
    for index in range(len(tokens) - 2):
        a, label, brace = tokens[index : index + 3]
        if (
            a.kind == "ident"
            and a.text == kind
            and label.kind in ("string", "ident")
            and brace.text == "{"
        ):
            body, _end, closed = _body(tokens, index + 2)
            yield label.text, body, closed


def skim(text: str) -> dict[str, Any]:
    """The ``variable`` and ``module`` blocks of a file python-hcl2 cannot parse, shaped
    as it would shape them, conservatively:

    - a variable is ``sensitive`` when it says so (or ``ephemeral``), and so is one whose
      block never closes (whatever follows may be its); its ``default`` is every string in
      its default expression (every string of the block, when it never closes, but its
      description);
    - a module argument is a list: a template per variable its expression references
      (``"${var.a}"``: the whole variable, never a part of it), then its literal strings;
      the call is marked ``SKIMMED``.
    """
    tokens = _tokens(text)
    variables: list[dict[str, Any]] = []
    for name, body, closed in _found_blocks(tokens, "variable"):
        attrs = _attributes(body)
        flagged = any(
            [t.text for t in attrs.get(key, []) if t.kind != "newline"] == ["true"]
            for key in ("sensitive", "ephemeral")
        )
        if closed:
            default = _strings(attrs.get("default", []))
        else:
            skipped = set(map(id, attrs.get("description", [])))
            default = [t.text for t in body if t.kind == "string" and id(t) not in skipped]
        variables.append({name: {"sensitive": flagged or not closed, "default": default}})
    modules: list[dict[str, Any]] = []
    for name, body, _closed in _found_blocks(tokens, "module"):
        call: dict[str, Any] = {SKIMMED: True}
        for key, expression in _attributes(body).items():
            if key == "source":
                strings = _strings(expression)
                call["source"] = strings[0] if strings else None
            else:
                literals = [re.sub(r"\$\{[^}]*\}", "", s) for s in _strings(expression)]
                call[key] = [
                    *(f"${{var.{ref}}}" for ref in _var_refs(expression)),
                    *(s for s in literals if s.strip()),
                ]
        modules.append({name: call})
    return {"variable": variables, "module": modules}
