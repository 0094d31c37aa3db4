"""Personas, a throwaway infrastructure repository per test, and real-component fixtures."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import signal
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
from django.contrib.auth.models import Group, User
from django.db import connection
from rest_framework.test import APIClient

from deployments.terraform.source import create_repository

from .factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def _flush_past_the_audit_guard() -> None:
    """SQLite empties tables with DELETE when a transactional test ends, and the audit
    table refuses DELETE (deployments.audit_guard): lift the triggers around the flush
    only. PostgreSQL flushes with TRUNCATE, which the guard leaves alone."""
    from django.db.backends.sqlite3.base import DatabaseOperations

    from deployments import audit_guard

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


def _persona(username: str, *roles: str, **extra: Any) -> User:
    user = UserFactory(username=username, **extra)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def author(db: None) -> User:
    """A developer who files tickets (dev1 in the demo)."""
    return _persona("alice", "developer")


@pytest.fixture
def developer(db: None) -> User:
    return _persona("dave", "developer")


@pytest.fixture
def lead(db: None) -> User:
    return _persona("lena", "lead_developer")


@pytest.fixture
def tech_lead(db: None) -> User:
    return _persona("tess", "tech_lead")


@pytest.fixture
def devops_lead(db: None) -> User:
    return _persona("otto", "devops_lead")


@pytest.fixture
def qa(db: None) -> User:
    return _persona("quinn", "qa")


@pytest.fixture
def operations(db: None) -> User:
    return _persona("opal", "operations")


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but holds no role: sees nothing."""
    return _persona("charlie")


def api_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


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


def sandbox_sees(
    monkeypatch: pytest.MonkeyPatch,
    *,
    readonly: tuple[Path, ...] = (),
    writable: tuple[Path, ...] = (),
) -> None:
    """Host paths a test's Terraform wrapper reads (the real binary it execs) or writes (a
    marker), made visible inside the sandbox: in this process's settings and, for a worker
    started afterwards, in its environment."""
    import dataclasses

    from django.conf import settings

    config = settings.TERRAFORM_SANDBOX_CONFIG
    config = dataclasses.replace(
        config,
        readonly_paths=(*config.readonly_paths, *readonly),
        writable_paths=(*config.writable_paths, *writable),
    )
    monkeypatch.setattr(settings, "TERRAFORM_SANDBOX_CONFIG", config)
    monkeypatch.setenv(
        "TERRAFORM_SANDBOX_READONLY_PATHS", ",".join(str(p) for p in config.readonly_paths)
    )
    monkeypatch.setenv(
        "TERRAFORM_SANDBOX_WRITABLE_PATHS", ",".join(str(p) for p in config.writable_paths)
    )


def real_terraform(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real Terraform binary, for a wrapper to exec: readable inside the sandbox."""
    from deployments.terraform.runner import find_binary

    binary = find_binary(os.environ.get("TERRAFORM_BIN", ""))
    sandbox_sees(monkeypatch, readonly=(Path(binary),))
    return binary


@pytest.fixture
def head_sha(infra_repo: Path) -> str:
    from deployments.terraform.source import InfraRepo

    return InfraRepo(location=str(infra_repo), cache_dir=infra_repo.parent).branch_tip("main")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days",
        type=int,
        default=0,
        help="run every test with the clock this many days ahead of today (CI runs a year "
        "ahead: a test bound to a date that has passed, or will, fails there first); tests "
        "marked `worker` are left on the real clock (their worker is another process)",
    )


@pytest.fixture(autouse=True)
def _clock_shift(request: pytest.FixtureRequest) -> Iterator[None]:
    """With --clock-shift-days, each test starts at today + N days, the clock ticking.

    A test's own ``time_machine.travel`` nests inside this one, so only assertions made
    outside a travel block see the shifted clock: exactly the ones that must hold on any
    date.
    """
    days = request.config.getoption("--clock-shift-days")
    if not days or request.node.get_closest_marker("worker"):
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


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def purge_broker() -> None:
    """Drop every message of the portal's queues, the per-environment Terraform queues
    included (a message left by an earlier test names a row of that test's database)."""
    from changecontrol.celery import app
    from deployments.models import Environment
    from deployments.queues import worker_queues

    names = set(Environment.objects.values_list("name", flat=True)) | {"dev", "staging", "prod"}
    with app.connection_for_write() as connection_:
        channel = connection_.default_channel
        for queue in worker_queues(sorted(names), portal=True):
            try:
                channel.queue_purge(queue)
            except Exception:
                continue


def spawn_worker(
    tmp_path: Path,
    infra_repo: Path,
    *,
    name: str = "test-worker",
    queues: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A real `celery worker` process on the configured broker, sharing the test database;
    consuming ``queues`` (-Q) or, without, every queue (as `make run`'s worker does)."""
    environment = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "INFRA_REPO": str(infra_repo),
        "TERRAFORM_BACKEND_CONFIG": f"workspace_dir={tmp_path / 'state'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SECRET_KEY": "worker-test-key",
        **(env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "changecontrol",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
    ]
    if queues:
        argv += ["-Q", ",".join(queues)]
    with (tmp_path / f"{name}.log").open("ab") as log_file:
        return subprocess.Popen(
            argv, cwd=ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def paced_terraform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, commands: tuple[str, ...], seconds: int
) -> Path:
    """A `terraform` that waits before the given commands, as it would on a real cloud (on
    the offline sample stack an apply is over in half a second), then runs the real one.
    The worker process started afterwards reads it from TERRAFORM_BIN."""
    real = real_terraform(monkeypatch)
    wrapper = tmp_path / "paced-bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in {"|".join(commands)}) sleep {seconds} ;; esac\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("TERRAFORM_BIN", str(wrapper))
    return wrapper


def wait_for(predicate: Any, *, timeout: float = 120, what: str = "condition") -> Any:
    """Poll a real component until ``predicate`` returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


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
    own tests in test_evidence_gate.py and test_browser_evidence.py)."""
    from deployments.models import Environment

    Environment.objects.filter(name="prod").update(requires_staging_evidence=False)


# --- credentials per environment and phase (issue 17) --------------------------------

AWS_ACCOUNT = "123456789012"
# The worker's own base credentials: they may call STS, and must never reach a run.
WORKER_BASE_KEY = "AKIAWORKERBASE000001"
WORKER_BASE_SECRET = "worker-base-secret-never-in-a-run-0123456789"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{AWS_ACCOUNT}:role/{name}"


class MotoSTS:
    """moto's STS (and IAM) served over HTTP on loopback, in this process, so a test can
    read which sessions it issued (role, session name, the short-lived keys) to tell what
    each run received."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _post(self, path: str, body: bytes) -> None:
        import urllib.request

        request = urllib.request.Request(
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def reset(self) -> None:
        self._post("/moto-api/reset", b"")
        self._post("/moto-api/reset-auth", b"inf")

    def sessions(self) -> list[Any]:
        """Every session STS issued: ``role_arn``, ``session_name``, ``access_key_id``,
        ``secret_access_key``, ``session_token``, ``expiration`` (naive UTC)."""
        from moto.sts.models import sts_backends

        return list(sts_backends[AWS_ACCOUNT]["aws"].assumed_roles)

    def worker_user(self, name: str, allowed_roles: str) -> tuple[str, str]:
        """An IAM user allowed sts:AssumeRole on ``allowed_roles`` (an ARN pattern) only;
        its access key and secret."""
        import json

        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=WORKER_BASE_KEY,
            aws_secret_access_key=WORKER_BASE_SECRET,
        )
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName="assume",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": allowed_roles}
                    ],
                }
            ),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self) -> None:
        """From now on every request must be signed by a known key and allowed by IAM."""
        self._post("/moto-api/reset-auth", b"0")


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


def sha256_hex(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


def probe_terraform(tmp_path: Path) -> Path:
    """A `terraform` that first prints (on stderr, so into the run's log) the SHA-256 of the
    AWS_ACCESS_KEY_ID and CCP_MARKER it received, then runs the real one: what every
    Terraform process of a run got, told without telling the values."""
    from deployments.terraform.runner import find_binary

    wrapper = tmp_path / "probe-bin" / "terraform"
    wrapper.parent.mkdir(exist_ok=True)
    digest = '$(printf %s "{0}" | sha256sum | cut -c1-64)'
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "probe %s key=%s marker=%s\\n" "$1" "{digest.format("$AWS_ACCESS_KEY_ID")}" '
        f'"{digest.format("$CCP_MARKER")}" >&2\n'
        f'exec {shlex.quote(find_binary(os.environ.get("TERRAFORM_BIN", "")))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


# A resource whose apply prints what its local-exec received: the values (which the redactor
# must mask) and their SHA-256 (which says whose they were).
CREDENTIALS_PROBE_TF = """
resource "null_resource" "credentials_probe" {
  provisioner "local-exec" {
    command = <<-EOT
      echo "local-exec received AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID CCP_MARKER=$CCP_MARKER"
      key=$(printf %s "$AWS_ACCESS_KEY_ID" | sha256sum | cut -c1-64)
      marker=$(printf %s "$CCP_MARKER" | sha256sum | cut -c1-64)
      echo "local-exec probe key=$key marker=$marker"
    EOT
  }
}
"""


def commit_credentials_probe(repo: Path) -> str:
    """Put the probe resource on main in the infrastructure repository; the new tip."""
    from deployments.terraform.source import commit_all

    (repo / "terraform" / "credentials_probe.tf").write_text(CREDENTIALS_PROBE_TF)
    return commit_all(repo, "Print what the apply's local-exec receives")


def credentials_file(tmp_path: Path, environments: tuple[str, ...]) -> tuple[Path, dict[str, str]]:
    """A TERRAFORM_CREDENTIALS_FILE holding ``<env>-plan`` and ``<env>-apply`` sets, each
    with a distinct CCP_MARKER; the file and each set's marker."""
    import json

    markers = {
        f"{env}-{phase}": f"marker-{env}-{phase}-{uuid.uuid4().hex}"
        for env in environments
        for phase in ("plan", "apply")
    }
    path = tmp_path / f"credentials-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({name: {"CCP_MARKER": value} for name, value in markers.items()}))
    path.chmod(0o600)
    return path, markers
