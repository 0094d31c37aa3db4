"""The benchmarks run code of the portal in scripts they hand to `manage.py shell` (strings
the linters never see): every name those scripts import exists, so a move of a module
breaks this test instead of the next `make bench`."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from tests.helpers.paths import ROOT


def _script_imports() -> list[tuple[str, str, str]]:
    """(benchmark file, module, name) of each `from deployments... import name` line in a
    string of a benchmark module."""
    found = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if "from deployments" not in node.value and "import deployments" not in node.value:
                continue
            try:
                script = ast.parse(re.sub(r"%\(\w+\)[ds]", "1", node.value).replace("%%", "%"))
            except SyntaxError:
                continue
            for statement in ast.walk(script):
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        found.append((path.name, statement.module, alias.name))
    return found


def test_the_scripts_are_found() -> None:
    assert ("terraform_bench.py", "deployments.services.runs.spec", "terraform_spec") in (
        _script_imports()
    )


@pytest.mark.parametrize(("where", "module", "name"), _script_imports())
def test_every_name_a_benchmark_script_imports_exists(where: str, module: str, name: str) -> None:
    imported = importlib.import_module(module)
    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
        f"{where}: {module} has no {name}"
    )
