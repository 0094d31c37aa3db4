"""The production image can start (issue 16): the wheel holds every local Django app in
INSTALLED_APPS, the Dockerfile copies every package the wheel holds, it runs as a user
that is not root, and ``make lint`` type-checks every local app.

There is no Docker engine here: the wheel is built for real (pip, no network, from a copy
of the sources) and the Dockerfile is read as Docker reads it.
"""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers.paths import ROOT


def _local_apps() -> list[str]:
    """INSTALLED_APPS whose code is this repository's (not a library's)."""
    found = []
    for app in settings.INSTALLED_APPS:
        module = importlib.import_module(app)
        path = Path(module.__file__ or "").resolve()
        if ROOT in path.parents and ".venv" not in path.parts:
            found.append(app)
    return found


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def _copied_sources(dockerfile: Path) -> set[str]:
    sources: set[str] = set()
    for keyword, args in _instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        sources.update(p.rstrip("/").removeprefix("./") for p in parts[:-1])
    return sources


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The files of the wheel `pip wheel .` builds from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for top in ROOT.iterdir():
        if top.is_dir() and (top / "__init__.py").exists():
            shutil.copytree(top, src / top.name, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_local_app_with_its_migrations(wheel_names: set[str]) -> None:
    apps = _local_apps()
    assert {"deployments", "notifications"} <= set(apps)
    for app in apps:
        folder = app.replace(".", "/")
        assert f"{folder}/__init__.py" in wheel_names, f"{app} is not in the wheel"
        migrations = ROOT / folder / "migrations"
        for migration in migrations.glob("*.py") if migrations.is_dir() else []:
            assert f"{folder}/migrations/{migration.name}" in wheel_names, migration
    assert "changecontrol/settings.py" in wheel_names
    # Tests and benchmarks are not shipped.
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in wheel_names)


def test_the_dockerfile_copies_every_package_the_wheel_holds(wheel_names: set[str]) -> None:
    packages = {name.split("/", 1)[0] for name in wheel_names if name.endswith("/__init__.py")}
    copied = _copied_sources(ROOT / "Dockerfile")
    if "." in copied:  # the whole tree
        return
    missing = sorted(packages - copied)
    assert not missing, f"the Dockerfile does not COPY {missing}"


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    instructions = _instructions(ROOT / "Dockerfile")
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the Dockerfile never leaves root (no USER)"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), users[-1]
    # USER comes after the last RUN (which may need root) and before what runs the app.
    order = [keyword for keyword, _ in instructions]
    last_user = len(order) - 1 - order[::-1].index("USER")
    assert "RUN" not in order[last_user:]
    assert order.index("CMD") > last_user
    # The user exists in the image and owns where the portal writes.
    run = " ".join(args for keyword, args in instructions if keyword == "RUN")
    if user.isdigit():
        assert re.search(rf"useradd\b[^&]*--uid {user}\b", run), "no user with that uid"
    assert re.search(r"chown \S+ [^&]*/data", run) and "/app/var" in run


def test_make_lint_type_checks_every_local_app() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    (mypy,) = [line for line in lint.splitlines() if "mypy" in line]
    checked = set(mypy.split()[1:])
    tops = {app.split(".")[0] for app in _local_apps()} | {"changecontrol"}
    assert tops <= checked, f"mypy does not check {sorted(tops - checked)}"
