"""Settings, all from environment variables with safe local defaults.

With no variables set the portal runs embedded: SQLite, a filesystem Celery
broker and local file storage, everything under ``DATA_DIR`` (default ``var/``).
``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``AWS_STORAGE_BUCKET_NAME`` switch
to PostgreSQL, Redis and S3.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

# Generic admin/form classes (ModelAdmin[Model]) at runtime, for typed code.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """A string variable; ``NAME_FILE`` names a file holding the value (for secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_path}: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_json_object(name: str) -> dict[str, Any]:
    """A JSON object keyed by environment name ({} when unset)."""
    raw = env_str(name).strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object keyed by environment name")
    return value


DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Embedded mode is the one-command local run (SQLite): demo accounts exist only there.
EMBEDDED = env_str("DATABASE_URL", "sqlite:").startswith("sqlite:")

DEBUG = env_bool("DEBUG", False)
_secret = env_str("SECRET_KEY")
if not _secret:
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL names a server")
    # A per-installation key kept under DATA_DIR so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    _secret = key_file.read_text().strip()
SECRET_KEY = _secret
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",  # kept only for migration 0015 (its tokens are now hashed keys)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from our own static files
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    "deployments",
    "notifications",
]

MIDDLEWARE = [
    "deployments.lib.middleware.ServerTiming",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "deployments.lib.middleware.RequireMFAForLeads",
    "deployments.lib.timezones.ActivateUserTimezone",
    # Every refusal of a signed-in person (403, "you may not") becomes an audit event.
    "deployments.lib.middleware.AuditRefusals",
]

# Covering indexes (INCLUDE) speed up PostgreSQL; SQLite builds them without the extra
# columns, which is all W040 says (docs/performance.md).
SILENCED_SYSTEM_CHECKS = ["models.W040"]

ROOT_URLCONF = "changecontrol.urls"
WSGI_APPLICATION = "changecontrol.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "deployments.pages.context.portal_context",
                "deployments.lib.timezones.timezone_context",
            ],
        },
    },
]

try:
    _db = dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}", conn_max_age=60
    )
except Exception as exc:  # dj_database_url raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so a real worker process can share the test database.
    _db["TEST"] = {"NAME": str(Path(_db["NAME"]).with_name("test-" + Path(_db["NAME"]).name))}
DATABASES: dict[str, Any] = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
# The nav badge ("waiting for me") is refreshed on the home page and, once older than this
# many seconds, on the next page shown (0: only on the home page).
QUEUE_BADGE_MAX_AGE = env_int("QUEUE_BADGE_MAX_AGE", 120)
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
# Accounts are provisioned by administrators; nobody signs themselves up.
ACCOUNT_ADAPTER = "deployments.lib.adapters.NoSignupAccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Leads (who approve) must have an authenticator app before using the portal in
# production; the local demo leaves it optional.
MFA_REQUIRED_FOR_LEADS = env_bool("MFA_REQUIRED_FOR_LEADS", not EMBEDDED)
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("REAUTHENTICATION_TIMEOUT", 300, minimum=30)
MFA_TOTP_ISSUER = "Change Control Portal"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL") or None
# boto3's region for CloudWatch (monitoring); boto3 itself also reads the variable.
AWS_DEFAULT_REGION = env_str("AWS_DEFAULT_REGION", "us-east-1")
_default_storage: dict[str, Any]
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_ENDPOINT_URL,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
# Plan files hold every secret of the plan in clear: readable by the portal's user only
# (0600 files in 0700 folders) locally, server-side encrypted and private on S3. They are
# read by workers only and never served to browsers (no view or API field exposes them).
PLAN_STORAGE_DIR = Path(env_str("PLAN_STORAGE_DIR", str(DATA_DIR / "plans")))
AWS_S3_KMS_KEY_ID = env_str("AWS_S3_KMS_KEY_ID")
EVIDENCE_STORAGE_DIR = Path(env_str("EVIDENCE_STORAGE_DIR", str(DATA_DIR / "evidence")))


def _bounded_transfer() -> Any:
    from boto3.s3.transfer import TransferConfig

    # s3transfer copies each part of a file object into memory; keep one 5 MiB part
    # (S3's smallest) there at a time, not its default of ten 8 MiB ones.
    config = TransferConfig(
        multipart_threshold=5 * 1024 * 1024,
        multipart_chunksize=5 * 1024 * 1024,
        max_concurrency=1,
        io_chunksize=256 * 1024,
    )
    config.max_in_memory_upload_chunks = 1  # s3transfer's setting, not in boto3's __init__
    return config


def plan_storage_config(
    *, bucket: str, endpoint_url: str | None, kms_key_id: str, location: Path
) -> dict[str, Any]:
    """STORAGES["plans"]: encrypted S3 objects when a bucket is set, else private files."""
    if bucket:
        sse: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint_url,
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
                "object_parameters": sse,
                # Files stream through bounded buffers: uploads in 5 MiB parts, one at a
                # time; reads spill to disk past 1 MiB (never a whole object in memory).
                "transfer_config": _bounded_transfer(),
                "max_memory_size": 1024 * 1024,
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(location),
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }


STORAGES = {
    "default": _default_storage,
    "plans": plan_storage_config(
        bucket=AWS_STORAGE_BUCKET_NAME,
        endpoint_url=AWS_ENDPOINT_URL,
        kms_key_id=AWS_S3_KMS_KEY_ID,
        location=PLAN_STORAGE_DIR,
    ),
    # Testing evidence: the same private/encrypted storage as plans, in its own folder
    # (a prefix of the same bucket on S3). Served only through the authorised download.
    "evidence": plan_storage_config(
        bucket=AWS_STORAGE_BUCKET_NAME,
        endpoint_url=AWS_ENDPOINT_URL,
        kms_key_id=AWS_S3_KMS_KEY_ID,
        location=EVIDENCE_STORAGE_DIR,
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# Where django.core.mail.backends.filebased.EmailBackend writes messages.
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "change-control@localhost")
# Notifications (notifications/): attempts per message, and the first retry delay (doubling).
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5, minimum=1)
NOTIFY_RETRY_BASE_SECONDS = env_int("NOTIFY_RETRY_BASE_SECONDS", 30, minimum=1)
# Seconds a Slack webhook call may take before the attempt counts as failed (then retried).
NOTIFY_HTTP_TIMEOUT = env_int("NOTIFY_HTTP_TIMEOUT", 10, minimum=1)
# Environments whose deploy started/failed events page the on-call team over SNS.
ONCALL_ENVIRONMENTS = env_list("ONCALL_ENVIRONMENTS", "prod")

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL") or "filesystem://"
CELERY_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # kombu's filesystem transport polls its folders (default once a second): each
        # poll is a directory listing, so polling often costs little and a queued run
        # starts within this long instead of half a second on average.
        "polling_interval": env_int("CELERY_BROKER_POLL_MS", 50, minimum=10) / 1000,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_PREFIX + "portal"
# Terraform work goes to one queue per environment, "<this>.<environment>" (terraform.prod):
# a worker consumes only the queues it is given with -Q, so prod's workers can run on hosts
# that alone hold prod's credentials (docs/workers.md). deployments.lib.queues routes each task
# by the environment of the run, drift check or plan it carries.
CELERY_TERRAFORM_QUEUE = CELERY_QUEUE_PREFIX + "terraform"
CELERY_TASK_ROUTES = ["deployments.lib.queues.route"]
# A worker started without -Q consumes the portal queue and, added when it starts, every
# environment's Terraform queue (deployments.lib.queues.consume_all_environments).
CELERY_TASK_QUEUES = [
    Queue(
        CELERY_TASK_DEFAULT_QUEUE,
        Exchange(CELERY_TASK_DEFAULT_QUEUE, type="direct"),
        routing_key=CELERY_TASK_DEFAULT_QUEUE,
    )
]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# How often the reconciler runs (seconds): a worker killed mid-apply leaves its run
# `interrupted` and the environment free within about this long.
RUN_RECONCILE_SECONDS = env_int("RUN_RECONCILE_SECONDS", 20, minimum=1)
# Monitoring period (docs/monitoring.md): how often the probes run, how long one HTTP health
# check may take, and how often an unchanged result is written again as a heartbeat.
MONITORING_POLL_SECONDS = env_int("MONITORING_POLL_SECONDS", 30, minimum=5)
MONITORING_HTTP_TIMEOUT_SECONDS = env_int("MONITORING_HTTP_TIMEOUT_SECONDS", 5, minimum=1)
MONITORING_HEARTBEAT_SECONDS = env_int("MONITORING_HEARTBEAT_SECONDS", 300, minimum=0)
# Per environment, merged with the environment's own settings: {"prod": ["https://..."]}
# (or [{"url": ..., "max_latency_ms": 500}]) and {"prod": "prod-"}.
HEALTH_CHECK_URLS = env_json_object("HEALTH_CHECK_URLS")
CLOUDWATCH_ALARM_PREFIXES = env_json_object("CLOUDWATCH_ALARM_PREFIXES")
CELERY_BEAT_SCHEDULE = {
    "idempotency-cleanup": {
        "task": "deployments.tasks.idempotency_cleanup",
        "schedule": 3600.0,
    },
    "reconcile-runs": {
        "task": "deployments.tasks.runs_reconcile",
        "schedule": float(RUN_RECONCILE_SECONDS),
    },
    # Overdue follow-ups (post-deployment reviews, post-mortems) re-notify the leads daily.
    "follow-ups-remind": {
        "task": "deployments.tasks.follow_ups_remind",
        "schedule": 3600.0,
    },
    "notifications-resend-stale": {
        "task": "notifications.tasks.resend_stale",
        "schedule": 900.0,
    },
    # Drift detection: starts each environment's due check (Environment.drift_check_minutes).
    "drift-checks": {
        "task": "deployments.tasks.drift_checks_start",
        "schedule": 60.0,
    },
    # Tickets in their monitoring period: CloudWatch alarms and health URLs are probed.
    "monitoring-poll": {
        "task": "deployments.tasks.monitoring_poll",
        "schedule": float(MONITORING_POLL_SECONDS),
    },
    # Scheduled deploys are database rows; this pass starts the due ones (never ETA messages).
    "run-schedules": {
        "task": "deployments.tasks.schedules_run",
        "schedule": float(env_int("SCHEDULES_RUN_SECONDS", 30, minimum=5)),
    },
    # Withdrawn evidence past EVIDENCE_WITHDRAWN_RETENTION_DAYS: its bytes are deleted.
    "evidence-purge": {
        "task": "deployments.tasks.evidence_purge",
        "schedule": 3600.0,
    },
    # The full walk of the audit chain (1M events ≈ 10 s); the audit page shows the outcome.
    "audit-verify": {
        "task": "deployments.tasks.audit_verify",
        "schedule": float(env_int("AUDIT_VERIFY_SECONDS", 86400, minimum=60)),
    },
}
# Tests only: a file whose ISO-8601 content is "now" for the worker's start-time re-check
# (deployments.lib.clock), so a real worker process sees the instant a test travelled to.
PORTAL_TEST_CLOCK_FILE = env_str("PORTAL_TEST_CLOCK_FILE", "")
# Publishing a task must never hang a web request when the broker is down:
# the reconciler re-sends queued runs.
CELERY_BROKER_TRANSPORT_OPTIONS.setdefault("max_retries", 2)
CELERY_BROKER_CONNECTION_TIMEOUT = 3

# --- Terraform --------------------------------------------------------------
INFRA_REPO = env_str("INFRA_REPO", str(DATA_DIR / "infra-repo"))
INFRA_BRANCH = env_str("INFRA_BRANCH", "main")
# The repository's web page (https://github.com/acme/infra): commit and compare links on
# the ticket page (selectors.review.repository_web_url); empty: GITHUB_REPOSITORY's page.
INFRA_REPO_WEB_URL = env_str("INFRA_REPO_WEB_URL").strip().rstrip("/")
if INFRA_REPO_WEB_URL and not re.match(r"^https?://[^\s/]+", INFRA_REPO_WEB_URL):
    raise ImproperlyConfigured(
        f"INFRA_REPO_WEB_URL must be an http(s) URL, not {INFRA_REPO_WEB_URL!r}"
    )
TERRAFORM_DIR = env_str("TERRAFORM_DIR", "terraform")
TERRAFORM_BIN = env_str("TERRAFORM_BIN")
TERRAFORM_HOME = DATA_DIR / "terraform"  # mirror, plugin cache, state, work dirs
# Installed with the virtualenv (make install), shared by every DATA_DIR.
TERRAFORM_PROVIDER_MIRROR = Path(
    env_str("TERRAFORM_PROVIDER_MIRROR", str(Path(sys.prefix) / "share" / "terraform-providers"))
)
TERRAFORM_BACKEND_CONFIG = env_list(
    "TERRAFORM_BACKEND_CONFIG", f"workspace_dir={TERRAFORM_HOME / 'state'}"
)
TERRAFORM_PLAN_TIMEOUT = env_int("TERRAFORM_PLAN_TIMEOUT", 1800, minimum=10)
TERRAFORM_APPLY_TIMEOUT = env_int("TERRAFORM_APPLY_TIMEOUT", 7200, minimum=10)
# Rego policies over each plan (docs/policies.md): the time limit of one plan's policies
# (all of them, in seconds), their memory, and the largest `show -json` they read.
POLICY_TIMEOUT = env_int("POLICY_TIMEOUT", 20, minimum=1)
POLICY_MEMORY_MB = env_int("POLICY_MEMORY_MB", 1024, minimum=64)
POLICY_PLAN_MAX_BYTES = env_int("POLICY_PLAN_MAX_MB", 64, minimum=1) * 1024**2
# How long a run waits for another run's state lock (e.g. a plan during an apply).
TERRAFORM_LOCK_TIMEOUT = f"{env_int('TERRAFORM_LOCK_TIMEOUT', 300, minimum=0)}s"
# A running plan or check whose worker has not written for this long is declared
# interrupted. Applies are not: they are interrupted only once their worker's environment
# lock is free (the worker process is really gone), however long it stays silent.
RUN_HEARTBEAT_TIMEOUT = env_int("RUN_HEARTBEAT_TIMEOUT", 180, minimum=10)
# How long a worker waits for an environment's lock before leaving an apply queued.
RUN_LOCK_WAIT = env_int("RUN_LOCK_WAIT", 60, minimum=1)
# A run still queued after this long (a lost broker message) is sent again by the reconciler.
RUN_RESEND_AFTER = env_int("RUN_RESEND_AFTER", 60, minimum=5)
# The sandbox around every Terraform process (docs/security.md). bwrap (default):
# bubblewrap, as an unprivileged user in namespaces of its own; container: docker/podman
# run per process; none: unisolated, only when set explicitly (every page then says so).
TERRAFORM_SANDBOX = env_str("TERRAFORM_SANDBOX", "bwrap").strip().lower()
# egress: its own network namespace with a user-mode uplink (slirp4netns) that cannot
# reach this host's loopback (PostgreSQL, Redis); none: loopback only.
TERRAFORM_SANDBOX_NETWORK = env_str("TERRAFORM_SANDBOX_NETWORK", "egress").strip().lower()


def _sandbox_config() -> Any:
    """The sandbox's settings, checked now: a bad value stops the portal naming it."""
    from deployments.terraform.sandbox import (
        BACKENDS,
        DEFAULT_UID,
        ENGINES,
        NETWORKS,
        Limits,
        SandboxConfig,
    )

    for name, value, allowed in (
        ("TERRAFORM_SANDBOX", TERRAFORM_SANDBOX, BACKENDS),
        ("TERRAFORM_SANDBOX_NETWORK", TERRAFORM_SANDBOX_NETWORK, NETWORKS),
        ("TERRAFORM_SANDBOX_ENGINE", env_str("TERRAFORM_SANDBOX_ENGINE", "docker"), ENGINES),
    ):
        if value not in allowed:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    paths = {}
    for name in ("TERRAFORM_SANDBOX_READONLY_PATHS", "TERRAFORM_SANDBOX_WRITABLE_PATHS"):
        items = [Path(item) for item in env_list(name, "")]
        if any(not item.is_absolute() for item in items):
            raise ImproperlyConfigured(f"{name} must list absolute paths (comma-separated)")
        paths[name] = tuple(items)
    config = SandboxConfig(
        backend=TERRAFORM_SANDBOX,
        network=TERRAFORM_SANDBOX_NETWORK,
        uid=env_int("TERRAFORM_SANDBOX_UID", DEFAULT_UID, minimum=1),
        gid=env_int("TERRAFORM_SANDBOX_GID", DEFAULT_UID, minimum=1),
        limits=Limits(
            cpu_seconds=env_int("TERRAFORM_SANDBOX_CPU_SECONDS", 600, minimum=10),
            memory_bytes=env_int("TERRAFORM_SANDBOX_MEMORY_MB", 4096, minimum=256) * 1024**2,
            processes=env_int("TERRAFORM_SANDBOX_PROCESSES", 512, minimum=32),
            open_files=env_int("TERRAFORM_SANDBOX_OPEN_FILES", 4096, minimum=256),
        ),
        readonly_paths=paths["TERRAFORM_SANDBOX_READONLY_PATHS"],
        writable_paths=paths["TERRAFORM_SANDBOX_WRITABLE_PATHS"],
        hidden_paths=tuple(
            sorted({DATA_DIR, BASE_DIR, Path(sys.prefix).resolve(), Path(sys.prefix)})
        ),
        engine=env_str("TERRAFORM_SANDBOX_ENGINE", "docker"),
        image=env_str("TERRAFORM_SANDBOX_IMAGE", ""),
    )
    try:
        config.validate()
    except ValueError as exc:
        variable = (
            "TERRAFORM_SANDBOX_IMAGE"
            if "image" in str(exc)
            else "TERRAFORM_SANDBOX_WRITABLE_PATHS"
            if "writable" in str(exc)
            else "TERRAFORM_SANDBOX_UID"
            if "uid" in str(exc)
            else "TERRAFORM_SANDBOX"
        )
        raise ImproperlyConfigured(f"{variable}: {exc}") from None
    return config


TERRAFORM_SANDBOX_CONFIG = _sandbox_config()
# Variables of the worker's own environment passed on to every Terraform run: only what is
# not a secret (region, endpoint, CA bundle). Credentials reach a run only as its
# environment's credential set or role for its phase (TERRAFORM_CREDENTIALS_FILE, the
# environment's plan/apply roles: docs/workers.md), never the worker's own.
TERRAFORM_ENV_PASSTHROUGH = env_list(
    "TERRAFORM_ENV_PASSTHROUGH",
    "AWS_REGION,AWS_DEFAULT_REGION,AWS_ENDPOINT_URL,AWS_CA_BUNDLE,SSL_CERT_FILE",
)
# Names that hold (or lead to) credentials or the portal's own secrets: refused above.
PASSTHROUGH_REFUSED = re.compile(
    r"(?i)(secret|token|passw|credential|private|key|profile|auth|session|role_arn"
    r"|config_file|_url$|^(database|redis|celery)_)"
)
# Not secrets, though their names match: where to reach AWS (an emulator in tests).
PASSTHROUGH_ALLOWED = frozenset({"AWS_ENDPOINT_URL"})
for _name in TERRAFORM_ENV_PASSTHROUGH:
    if PASSTHROUGH_REFUSED.search(_name) and _name not in PASSTHROUGH_ALLOWED:
        raise ImproperlyConfigured(
            f"TERRAFORM_ENV_PASSTHROUGH: {_name} may hold a credential or a portal secret; "
            "runs get credentials only from their environment's credential set or role "
            "(TERRAFORM_CREDENTIALS_FILE, plan_role_arn/apply_role_arn; docs/workers.md)"
        )
# The worker's credential sets: a JSON file {"<set name>": {"VARIABLE": "value", ...}, ...},
# read by the worker when a run starts (never by the web process, never stored). An
# environment names the set its plans get and the one its applies get.
TERRAFORM_CREDENTIALS_FILE = env_str("TERRAFORM_CREDENTIALS_FILE")
# Longest session (seconds) asked of STS when a run assumes its environment's role: the
# phase's timeout plus 5 minutes, at least 900 (STS's minimum), at most this (a role's
# MaxSessionDuration must allow it; AWS's default is 3600).
TERRAFORM_ROLE_MAX_SECONDS = env_int("TERRAFORM_ROLE_MAX_SECONDS", 3600, minimum=900)
if TERRAFORM_ROLE_MAX_SECONDS > 43200:
    raise ImproperlyConfigured("TERRAFORM_ROLE_MAX_SECONDS must be at most 43200 (12 hours)")

# A run's stored log is capped: its head and tail are kept, one line between them says
# how much was dropped (docs/security.md, "Bounded output").
RUN_LOG_MAX_BYTES = env_int("RUN_LOG_MAX_BYTES", 5 * 1024 * 1024, minimum=64 * 1024)

# --- Integrations and limits -----------------------------------------------
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET")
# The one repository the webhook acts for, by full name AND numeric id: a renamed
# repository keeps its id, and a deleted one's name can be taken by someone else. A
# delivery from any other repository (an organisation webhook sends them all) is recorded
# and ignored with the reason; with either unset, no push or pull request is acted on.
GITHUB_REPOSITORY = env_str("GITHUB_REPOSITORY").strip()
if GITHUB_REPOSITORY and not re.fullmatch(
    r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", GITHUB_REPOSITORY
):
    raise ImproperlyConfigured(
        f"GITHUB_REPOSITORY must be owner/name, e.g. acme/infra, not {GITHUB_REPOSITORY!r}"
    )
GITHUB_REPOSITORY_ID = env_int("GITHUB_REPOSITORY_ID", 0, minimum=0)
# GitHub caps a delivery at 25 MB: bodies up to this stream to a temporary file while
# their HMAC is computed, and only the fields the portal uses are parsed out (a large merge
# still deploys dev). Larger ones are refused with 413 (recorded when signed).
GITHUB_WEBHOOK_MAX_BYTES = env_int("GITHUB_WEBHOOK_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
SLACK_WEBHOOK_URL = env_str("SLACK_WEBHOOK_URL")
SNS_TOPIC_ARN = env_str("SNS_TOPIC_ARN")
EVIDENCE_MAX_BYTES = env_int("EVIDENCE_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
# Every uploaded file streams to a temporary file (never memory) through a handler that
# stops at EVIDENCE_MAX_BYTES per file; the upload view answers 413 (deployments.lib.uploads).
FILE_UPLOAD_HANDLERS = ["deployments.lib.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_PERMISSIONS = 0o600
EVIDENCE_MAX_FILES = 10  # files in one browser upload (each up to EVIDENCE_MAX_BYTES)
# Quotas (policy.evidence_quota_problem; withdrawn files do not count): per ticket, files and
# bytes; per person, bytes uploaded in the last 24 hours, across tickets.
EVIDENCE_TICKET_MAX_FILES = env_int("EVIDENCE_TICKET_MAX_FILES", 100, minimum=1)
EVIDENCE_TICKET_MAX_BYTES = env_int("EVIDENCE_TICKET_MAX_BYTES", 500 * 1024 * 1024, minimum=1)
EVIDENCE_USER_DAILY_BYTES = env_int("EVIDENCE_USER_DAILY_BYTES", 1024 * 1024 * 1024, minimum=1)
# A withdrawn file's bytes are kept this long (an auditor may still read them), then deleted
# by the beat task evidence_purge.
EVIDENCE_WITHDRAWN_RETENTION_DAYS = env_int("EVIDENCE_WITHDRAWN_RETENTION_DAYS", 30, minimum=0)
# Form and JSON bodies (not file uploads, which stream to disk and have their own limit):
# Django refuses a larger urlencoded body; the API's JSON parser refuses one over
# API_JSON_MAX_BYTES with 413 before reading further.
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
API_JSON_MAX_BYTES = 4 * 1024 * 1024
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo")
# API requests per user (anonymous: per address), "N/s|min|hour|day"; "off" disables.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "600/min").strip()
if API_THROTTLE_RATE != "off" and not (
    API_THROTTLE_RATE.partition("/")[0].isdigit()
    and API_THROTTLE_RATE.partition("/")[2]
    in {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}
):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 600/min (or 'off'), not {API_THROTTLE_RATE!r}"
    )
# How long an Idempotency-Key's stored answer is replayed (hours); a beat task forgets older.
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
# A rollback opened within this many minutes of the deployment it undoes is "immediate":
# one Tech Lead or DevOps Lead approves it and it may deploy outside the window (SPEC §1).
ROLLBACK_IMMEDIATE_MINUTES = env_int("ROLLBACK_IMMEDIATE_MINUTES", 60, minimum=1)
# The longest freeze anyone may declare (policy.freeze_length_problem): a longer blackout
# is declared again when it is still needed, by someone who may (Environment.freeze_groups).
FREEZE_MAX_DAYS = env_int("FREEZE_MAX_DAYS", 14, minimum=1)
# Links in messages. The default follows PORT (make run serves on it), so a local run on
# another port links to itself, not to 8000.
_LOCAL_PORT = env_int("PORT", 8000, minimum=1)
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", f"http://127.0.0.1:{_LOCAL_PORT}")
# How long the DORA metrics (/metrics/, /api/v1/metrics/) are cached, in seconds; 0: never.
METRICS_CACHE_SECONDS = env_int("METRICS_CACHE_SECONDS", 120)

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Token <key>`: hashed API keys (deployments.models.ApiKey).
        "deployments.api.support.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, and the same step-up rules as the pages (MFA enrolment, re-authentication).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "deployments.api.support.permissions.StepUp",
        # A key scoped to CI may read, file, plan and post checks; nothing else.
        "deployments.api.support.authentication.ApiKeyScopeAllows",
    ],
    # Per user (per client address when anonymous), counted in the shared CACHES so that
    # every gunicorn worker sees the same count; API_THROTTLE_RATE, e.g. "600/min".
    "DEFAULT_THROTTLE_CLASSES": ["deployments.api.support.throttling.PerUserThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON is the request body everywhere; the two verbs that take a file (evidence, a
    # check's log_file) add multipart themselves. A form post elsewhere is 415, not a body
    # whose nested objects (risk_assessment, rollback_plan) silently vanish.
    "DEFAULT_PARSER_CLASSES": ["deployments.api.support.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "deployments.api.support.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "deployments.api.support.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "deployments.api.support.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Change Control Portal API",
    "DESCRIPTION": "Deployment tickets, approvals and Terraform runs (v1).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page (/api/docs/) runs Swagger UI from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Request and response shapes differ (read-only fields); name them apart.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "deployments.choices.TicketStatus",
        "RunStatusEnum": "deployments.choices.RunStatus",
        "RunKindEnum": "deployments.choices.RunKind",
        "ChangeTypeEnum": "deployments.choices.ChangeType",
        "CheckStatusEnum": "deployments.models.checks.CheckStatus",
        "DeliveryStatusEnum": "deployments.models.webhooks.DeliveryStatus",
        "RiskLevelEnum": "deployments.policy.risk.LEVEL_CHOICES",
        "EvidenceKindEnum": "deployments.models.evidence.EvidenceKind",
        "PolicyStatusEnum": "deployments.api.shapes.policies.POLICY_STATUSES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "deployments.api.support.schema.add_error_responses",
        "deployments.api.support.schema.close_strict_objects",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Caches (sign-in rate limits) -------------------------------------------------
# allauth counts failed sign-ins in Django's cache, so the cache must be shared by every
# web process (gunicorn runs several): Redis when one is configured, else files under
# DATA_DIR. Never the per-process memory cache.
CACHE_URL = env_str("CACHE_URL") or next(
    (
        url
        for url in (env_str("REDIS_URL"), CELERY_BROKER_URL)
        if url.startswith(("redis://", "rediss://"))
    ),
    "",
)
CACHES: dict[str, Any]
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "portal",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- Sign-in throttling --------------------------------------------------------------
# Every sign-in goes through allauth (the admin's login redirects there, see urls.py), so
# these limits hold for all of them: by default 5 failures per username in 5 minutes and
# 10 per client address per minute; then even the right password is refused until the
# window passes. Behind a proxy, TRUSTED_PROXY_COUNT says how many X-Forwarded-For hops to
# trust for the client address.
ACCOUNT_RATE_LIMITS = {
    "login_failed": (
        f"{env_int('LOGIN_FAILURES_PER_ADDRESS', 10, minimum=1)}/m/ip,"
        f"{env_int('LOGIN_FAILURES_PER_USER', 5, minimum=1)}"
        f"/{env_int('LOGIN_FAILURES_WINDOW', 300, minimum=1)}s/key"
    ),
}
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Content-Security-Policy (django-csp) ------------------------------------------
# No inline scripts or styles anywhere: templates load static/portal.js and portal.css.
# data: images are the TOTP enrolment QR code allauth renders.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- TLS ---------------------------------------------------------------------------
# Behind a TLS-terminating proxy, name the header it sets: SECURE_PROXY_SSL_HEADER=
# HTTP_X_FORWARDED_PROTO trusts "X-Forwarded-Proto: https" (only if the proxy overwrites it).
_proxy_header = env_str("SECURE_PROXY_SSL_HEADER")
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = (_proxy_header, "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not EMBEDDED:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # Plain HTTP is redirected to HTTPS except the health check, so load balancers can
    # probe over HTTP.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
