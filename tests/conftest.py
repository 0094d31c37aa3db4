"""Personas, a throwaway infrastructure repository per test, and real-component fixtures."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.terraform.source import create_repository
from tests.helpers.aws import WORKER_BASE_KEY, WORKER_BASE_SECRET, MotoSTS
from tests.helpers.paths import ROOT
from tests.helpers.users import persona
from tests.helpers.workers import purge_broker, spawn_worker, stop_worker


def _flush_past_the_audit_guard() -> None:
    """SQLite empties tables with DELETE when a transactional test ends, and the audit
    table refuses DELETE (deployments.lib.audit_guard): lift the triggers around the flush
    only. PostgreSQL flushes with TRUNCATE, which the guard leaves alone."""
    from django.db.backends.sqlite3.base import DatabaseOperations

    from deployments.lib import audit_guard

    original = DatabaseOperations.sql_flush

    def sql_flush(self: Any, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, **kwargs)
        if audit_guard.TABLE not in tables:
            return statements
        return [
            *audit_guard.sqlite_drop_sql(),
            *statements,
            *audit_guard.sqlite_create_sql(),
        ]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


_flush_past_the_audit_guard()


# --- personas ----------------------------------------------------------------


@pytest.fixture
def author(db: None) -> User:
    """A developer who files tickets (dev1 in the demo)."""
    return persona("alice", "developer")


@pytest.fixture
def developer(db: None) -> User:
    return persona("dave", "developer")


@pytest.fixture
def lead(db: None) -> User:
    return persona("lena", "lead_developer")


@pytest.fixture
def tech_lead(db: None) -> User:
    return persona("tess", "tech_lead")


@pytest.fixture
def devops_lead(db: None) -> User:
    return persona("otto", "devops_lead")


@pytest.fixture
def qa(db: None) -> User:
    return persona("quinn", "qa")


@pytest.fixture
def operations(db: None) -> User:
    return persona("opal", "operations")


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but holds no role: sees nothing."""
    return persona("charlie")


# --- infrastructure repository and Terraform state -------------------------------


@pytest.fixture(scope="session")
def sample_repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample stack as a git repository, made once and copied per test."""
    path = tmp_path_factory.mktemp("infra-template") / "repo"
    create_repository(ROOT / "sample_stack", path)
    return path


@pytest.fixture
def infra_repo(sample_repo_template: Path, tmp_path: Path, settings: Any) -> Path:
    """A fresh infrastructure repository and empty Terraform state for this test."""
    repo = tmp_path / "infra-repo"
    shutil.copytree(sample_repo_template, repo)
    settings.INFRA_REPO = str(repo)
    settings.TERRAFORM_BACKEND_CONFIG = [f"workspace_dir={tmp_path / 'state'}"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return repo


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder per test that the sandbox's own uid can reach (as root, bubblewrap
    binds what a test puts there, state and wrappers, as that uid). pytest's folders are
    0700 and pytest resets their parent to 0700 whenever a session starts, so these live
    in a base of their own: traversable by others, listable by nobody else."""
    base = Path(tempfile.gettempdir()) / f"ccp-tests-{os.getuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def head_sha(infra_repo: Path) -> str:
    from deployments.terraform.source import InfraRepo

    return InfraRepo(location=str(infra_repo), cache_dir=infra_repo.parent).branch_tip("main")


def pytest_configure(config: pytest.Config) -> None:
    """The processes the tests start (tests/helpers/shifted_clock.py) learn the shift."""
    from tests.helpers.shifted_clock import SHIFT_ENV

    os.environ[SHIFT_ENV] = str(config.getoption("--clock-shift-days") or 0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days",
        type=int,
        default=0,
        help="run every test with the clock this many days ahead of today (CI runs a year "
        "ahead: a test bound to a date that has passed, or will, fails there first); the "
        "Celery worker and beat processes the tests start read the same shifted clock",
    )


@pytest.fixture(autouse=True)
def _clock_shift(request: pytest.FixtureRequest) -> Iterator[None]:
    """With --clock-shift-days, each test starts at today + N days, the clock ticking.

    A test's own ``time_machine.travel`` nests inside this one, so only assertions made
    outside a travel block see the shifted clock: exactly the ones that must hold on any
    date.
    """
    days = request.config.getoption("--clock-shift-days")
    if not days:
        yield
        return
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=days), tick=True):
        yield


@pytest.fixture(scope="session", autouse=True)
def _plain_http() -> Iterator[None]:
    """The test client and the live server speak plain HTTP, also in production mode (CI):
    no HTTPS redirect, no HSTS. Session-wide, because the live server is a session fixture
    whose middleware reads these settings once, before any per-test override."""
    from django.test import override_settings

    with override_settings(SECURE_SSL_REDIRECT=False, SECURE_HSTS_SECONDS=0):
        yield


@pytest.fixture(autouse=True)
def _test_settings(settings: Any) -> None:
    """Fast password hashing; MFA enrolment off unless a test turns it on (it defaults
    to on in production mode, which is how CI runs)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_FOR_LEADS = False
    # Throttling stays on, far above what any test sends (test_throttling lowers it).
    settings.API_THROTTLE_RATE = "100000/min"
    # A per-test cache so sign-in rate limits and their counters never leak between tests.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture(autouse=True)
def _no_stray_repo(settings: Any, tmp_path: Path) -> None:
    """Tests that do not ask for a repository get one that does not exist, never var/."""
    settings.INFRA_REPO = str(tmp_path / "no-infra-repo")
    settings.TERRAFORM_BACKEND_CONFIG = [f"workspace_dir={tmp_path / 'state'}"]


# --- a real Celery worker ------------------------------------------------------------


@pytest.fixture
def celery_worker_process(
    transactional_db: None, infra_repo: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process on the configured broker, sharing the test database,
    started without -Q: it consumes the portal queue and every environment's queue."""
    purge_broker()
    proc = spawn_worker(tmp_path, infra_repo, name="test-worker")
    try:
        yield proc
    finally:
        stop_worker(proc)
    if os.environ.get("SHOW_WORKER_LOG"):
        print((tmp_path / "test-worker.log").read_text())


# --- a real browser -------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server (S3, SNS, CloudWatch, ...) on loopback in its own process; yields its
    endpoint URL. Real boto3 over real HTTP; test credentials in the environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def moto_s3(moto_server: str) -> str:
    return moto_server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, shared by the browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --- seeded data ---------------------------------------------------------------------

_SEEDS = [
    importlib.import_module(f"deployments.migrations.{name}").seed
    for name in (
        "0002_seed_environments_and_roles",
        "0004_environment_step_up_auth",
        "0006_prod_visibility",
        "0012_risk",
        "0019_monitoring",
        "0026_environment_freeze_groups",
        "0030_environment_verified_providers",
    )
]


@pytest.fixture(autouse=True)
def _seeded(request: pytest.FixtureRequest) -> None:
    """Environments and role groups come from a data migration; transactional tests flush
    them, so every database test puts them back (a no-op when they are there)."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or {"db", "transactional_db", "live_server"} & set(
        request.fixturenames
    )
    if not uses_db:
        return
    transactional = (marker is not None and marker.kwargs.get("transaction")) or {
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.apps import apps

    if not apps.get_model("deployments", "Environment").objects.exists():
        for seed in _SEEDS:
            seed(apps, None)


@pytest.fixture
def without_promotion_gate(db: None) -> None:
    """For tests about approval quorum, windows and step-up on prod, not about where the
    commit came from: prod stops asking for staging evidence (the promotion gate has its
    own tests in tests/api/test_evidence_gate.py and tests/browser/test_evidence.py)."""
    from deployments.models import Environment

    Environment.objects.filter(name="prod").update(requires_staging_evidence=False)


@pytest.fixture
def evidence_dir(settings: Any, tmp_path: Path) -> Path:
    """Evidence files of this test in their own private folder."""
    from changecontrol.settings import plan_storage_config

    location = tmp_path / "evidence"
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": plan_storage_config(
            bucket="", endpoint_url=None, kms_key_id="", location=location
        ),
    }
    return location


# --- credentials per environment and phase (issue 17) --------------------------------


@pytest.fixture
def moto_sts(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoSTS]:
    """moto's STS on 127.0.0.1 (a free port); the worker's base credentials in the
    environment, AWS_ENDPOINT_URL pointing there."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    sts = MotoSTS(f"http://127.0.0.1:{port}")
    try:
        sts.reset()
        for name, value in {
            "AWS_ACCESS_KEY_ID": WORKER_BASE_KEY,
            "AWS_SECRET_ACCESS_KEY": WORKER_BASE_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        settings.AWS_ENDPOINT_URL = sts.endpoint
        yield sts
    finally:
        sts.reset()
        server.stop()
