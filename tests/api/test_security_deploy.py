"""Production settings pass `check --deploy`: HSTS, HTTPS redirect (health check exempt),
secure cookies, the TLS proxy header from the environment."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client

from tests.helpers.paths import ROOT

# Variables the caller's environment may set that would change what is being checked.
_SCRUB = {
    "DEBUG",
    "DATABASE_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_COOKIES",
    "SECURE_PROXY_SSL_HEADER",
    # Set by the browser tests for Playwright's event loop; never in a deployment.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        DJANGO_SETTINGS_MODULE="changecontrol.settings",
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="portal.example.com",
        **extra,
    )
    return env


def check_deploy(tmp_path: Path) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    issues = [line for line in output.splitlines() if line.startswith("?: (")]
    return proc.returncode, issues


def production_settings(tmp_path: Path, **extra: str) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n, None) for n in ("
        "'SECURE_SSL_REDIRECT', 'SECURE_REDIRECT_EXEMPT', 'SECURE_PROXY_SSL_HEADER', "
        "'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_check_deploy_has_no_security_warnings_in_production(tmp_path: Path) -> None:
    _, issues = check_deploy(tmp_path)
    # drf-spectacular's schema warnings are fixed with the schema work (issue 6, schema part).
    assert [i for i in issues if "(drf_spectacular." not in i] == []


def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    code, issues = check_deploy(tmp_path)
    assert issues == [] and code == 0


def test_production_defaults_and_the_proxy_header_come_from_the_environment(
    tmp_path: Path,
) -> None:
    defaults = production_settings(tmp_path)
    assert defaults["SECURE_SSL_REDIRECT"] is True
    assert defaults["SECURE_HSTS_SECONDS"] == 31536000
    assert defaults["SESSION_COOKIE_SECURE"] is True and defaults["CSRF_COOKIE_SECURE"] is True
    assert defaults["SECURE_PROXY_SSL_HEADER"] is None
    behind_proxy = production_settings(
        tmp_path,
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind_proxy["SECURE_SSL_REDIRECT"] is False
    assert behind_proxy["SECURE_HSTS_SECONDS"] == 0


def test_https_redirect_spares_the_health_check_and_trusts_the_proxy(
    tmp_path: Path, settings: Any, db: None
) -> None:
    prod = production_settings(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    settings.SECURE_SSL_REDIRECT = prod["SECURE_SSL_REDIRECT"]
    settings.SECURE_REDIRECT_EXEMPT = prod["SECURE_REDIRECT_EXEMPT"]
    settings.SECURE_PROXY_SSL_HEADER = tuple(prod["SECURE_PROXY_SSL_HEADER"])
    settings.SECURE_HSTS_SECONDS = prod["SECURE_HSTS_SECONDS"]
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 301 and page["Location"] == "https://testserver/accounts/login/"
    # Load balancers probe over plain HTTP: never redirected.
    assert client.get("/healthz").status_code in {200, 503}
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")
