"""The tests' own layout (docs/architecture.md): test modules live in an area mirroring the
code, share code only through tests/helpers/ and fixtures, and never import one another."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import ROOT

TESTS = ROOT / "tests"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another() -> None:
    offenders = {}
    for path in sorted(TESTS.rglob("*.py")):
        if "helpers" in path.relative_to(TESTS).parts or "vendor" in path.parts:
            continue
        bad = sorted(
            name
            for name in _imported_modules(path)
            if name.startswith("tests.")
            and not name.startswith("tests.helpers")
            and name.rsplit(".", 1)[-1].startswith(("test_", "conftest"))
        )
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}, f"import a helper from tests/helpers/ instead: {offenders}"


def test_test_modules_live_in_an_area() -> None:
    loose = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert loose == [], f"move these into tests/<area>/: {loose}"


def test_the_helpers_import_no_test_module() -> None:
    for path in sorted((TESTS / "helpers").rglob("*.py")):
        bad = [n for n in _imported_modules(path) if ".test_" in n or n.endswith("conftest")]
        assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"
