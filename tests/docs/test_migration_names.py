"""The docs name migrations that exist (docs/stacks.md once named `0031_stacks` for the
file `0033_stacks.py`)."""

from __future__ import annotations

import re

from tests.helpers.paths import ROOT

_MIGRATION = re.compile(r"\b(\d{4}_[a-z][a-z0-9_]*)\b")


def test_every_migration_the_docs_name_exists() -> None:
    migrations = {p.stem for p in (ROOT / "deployments" / "migrations").glob("0*.py")}
    named = {
        (doc.relative_to(ROOT).as_posix(), name)
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
        for name in _MIGRATION.findall(doc.read_text(encoding="utf-8"))
    }
    assert ("docs/stacks.md", "0033_stacks") in named
    assert sorted(item for item in named if item[1] not in migrations) == []
