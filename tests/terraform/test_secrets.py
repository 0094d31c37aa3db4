"""Secrets never reach logs, pages, errors or readable files (issue 6).

Terraform runs for real on a throwaway copy of the sample stack; runs go through the
worker's service (test_terraform_flow's helpers), so what is checked is what is stored.
"""

from __future__ import annotations

import json
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from deployments.choices import RunKind, TicketStatus
from deployments.models import Environment, Ticket
from deployments.terraform import runner
from deployments.terraform.redact import MASK, MIN_SECRET_LENGTH, Redactor
from deployments.terraform.sensitive import sensitive_values
from deployments.terraform.source import InfraRepo, SourceError, commit_all, sanitize_urls
from tests.helpers.api import api_for
from tests.helpers.flow import drain, file_dev


@pytest.fixture
def inline(monkeypatch: Any) -> list[int]:
    """Record dispatches instead of sending them to a broker (runs are drained in-process)."""
    from deployments import services

    sent: list[int] = []
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: sent.append(run_id))
    return sent


GREETING = "hello-innocent-words"
PEM_LINES = [
    "-----BEGIN PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu",
    "-----END PRIVATE KEY-----",
]
PEM = "\n".join(PEM_LINES) + "\n"

# Innocent names: nothing in them looks secret, only `sensitive = true` says so.
SENSITIVE_VARIABLES = """
variable "greeting" {
  type      = string
  sensitive = true
  default   = "x"
  validation {
    condition     = length(var.greeting) < 3
    error_message = "The greeting must be short."
  }
}

variable "bundle" {
  type      = string
  sensitive = true
  default   = ""
}

resource "terraform_data" "bundle" {
  input = var.bundle
}

# A configuration mistake the portal must survive: Terraform then prints the value
# as a heredoc, one line of the key per log line.
resource "terraform_data" "bundle_copy" {
  input = nonsensitive(var.bundle)
}
"""
PEM_TFVARS = "bundle = <<-EOT\n" + "".join(f"  {line}\n" for line in PEM_LINES) + "  EOT\n"


def _leaks(text: str) -> list[str]:
    """The pieces of any test secret found in ``text``."""
    pieces = [GREETING, PEM, *PEM_LINES[1:3], json.dumps(PEM)[1:-1]]
    return [piece for piece in pieces if piece in text]


def _stored_texts(ticket: Ticket) -> list[str]:
    """Everything stored or served about the ticket's runs: logs, errors, API bodies."""
    ticket.refresh_from_db()
    texts = [ticket.status_reason]
    client = api_for(ticket.author)
    texts.append(client.get(f"/api/v1/tickets/{ticket.pk}/").content.decode())
    for run in ticket.runs.all():
        texts += [run.log, run.error, json.dumps(run.summary)]
        texts.append(client.get(f"/api/v1/runs/{run.pk}/").content.decode())
    return texts


def _add_to_stack(repo: Path, tf: str, tfvars: str) -> str:
    (repo / "terraform/secrets_test.tf").write_text(tf)
    vars_file = repo / "terraform/environments/dev/terraform.tfvars"
    vars_file.write_text(vars_file.read_text() + "\n" + tfvars)
    return commit_all(repo, "add innocently named sensitive variables")


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_failed_validation_never_stores_a_sensitive_value(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    """Terraform quotes the var-file lines and the value of a sensitive variable whose
    validation fails; the portal knows the values before Terraform runs."""
    tf = SENSITIVE_VARIABLES.replace(
        'default   = ""\n}',
        'default   = ""\n  validation {\n    condition     = length(var.bundle) < 10\n'
        '    error_message = "The bundle is too long."\n  }\n}',
    )
    sha = _add_to_stack(infra_repo, tf, f'greeting = "{GREETING}"\n{PEM_TFVARS}')
    ticket = drain(file_dev(author, commit_sha=sha))
    assert ticket.status == TicketStatus.PLAN_FAILED
    run = ticket.runs.get()
    for text in _stored_texts(ticket):
        assert not _leaks(text), _leaks(text)
    # Terraform did print them: the validation errors reached the log, masked.
    assert "var.greeting is" in run.log and "var.bundle is" in run.log
    assert MASK in run.log


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_multi_line_sensitive_value_never_appears_through_plan_apply_and_check(
    author: User, infra_repo: Path, inline: list[int]
) -> None:
    sha = _add_to_stack(infra_repo, SENSITIVE_VARIABLES, f'greeting = "ok"\n{PEM_TFVARS}')
    ticket = drain(file_dev(author, commit_sha=sha))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    assert [r.kind for r in ticket.runs.order_by("id")] == [
        RunKind.PLAN,
        RunKind.APPLY,
        RunKind.CHECK,
    ]
    plan_log = ticket.runs.get(kind=RunKind.PLAN).log
    assert "terraform_data.bundle_copy" in plan_log and MASK in plan_log
    for text in _stored_texts(ticket):
        assert not _leaks(text), _leaks(text)


def test_sensitive_values_are_learnt_from_the_configuration(tmp_path: Path) -> None:
    """Root and local-module declarations, var-files, automatic var-files, TF_VAR_, defaults."""
    (tmp_path / "modules/db").mkdir(parents=True)
    (tmp_path / "main.tf").write_text(
        'variable "greeting" {\n  sensitive = true\n}\n'
        'variable "plain" {}\n'
        'variable "from_env" {\n  sensitive = true\n}\n'
        'variable "with_default" {\n  sensitive = true\n  default = "default-secret"\n}\n'
        'variable "fed" {}\n'
        'variable "auto" {\n  sensitive = true\n}\n'
        'module "db" {\n  source = "./modules/db"\n  password = var.fed\n'
        '  token = "literal-token-value"\n  name = "not-secret-name"\n}\n'
    )
    (tmp_path / "modules/db/variables.tf").write_text(
        'variable "password" {\n  sensitive = true\n}\n'
        'variable "token" {\n  sensitive = true\n}\n'
        'variable "name" {}\n'
    )
    (tmp_path / "prod.tfvars").write_text(
        f'greeting = "{GREETING}"\nplain = "visible-value"\nfed = "fed-to-module"\n'
    )
    (tmp_path / "x.auto.tfvars").write_text('auto = "auto-loaded-secret"\n')
    found = sensitive_values(
        tmp_path,
        [tmp_path / "prod.tfvars"],
        {"TF_VAR_from_env": "env-secret-value", "TF_VAR_plain": "env-plain"},
    )
    assert set(found) == {
        GREETING,
        "env-secret-value",
        "default-secret",
        "fed-to-module",
        "literal-token-value",
        "auto-loaded-secret",
    }


def test_threads_reading_configurations_at_once_each_get_plain_values(tmp_path: Path) -> None:
    """python-hcl2 shares its serialisation state between calls; a web thread and a worker
    thread reading at once once got quoted values (and so masked nothing)."""
    (tmp_path / "main.tf").write_text(
        'variable "token" {\n  sensitive = true\n}\n'
        'locals {\n  names = [for s in var.l : "${s}-k"]\n  u = upper("q-${var.token}")\n}\n'
    )
    (tmp_path / "a.tfvars").write_text('token = "thread-secret-value"\n')
    results: list[set[str]] = []

    def read() -> None:
        for _ in range(60):
            results.append(set(sensitive_values(tmp_path, [tmp_path / "a.tfvars"], {})))

    threads = [threading.Thread(target=read) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a loaded machine does
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(results) == 240
    assert all(found == {"thread-secret-value"} for found in results)


def test_an_unparseable_configuration_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('variable "x" {\n')  # broken: declarations unknown
    (tmp_path / "a.tfvars").write_text('x = "some-value"\ny = "other-value"\n')
    assert set(sensitive_values(tmp_path, [tmp_path / "a.tfvars"], {})) == {
        "some-value",
        "other-value",
    }


def test_an_unparseable_var_file_still_yields_its_sensitive_values(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('variable "x" {\n  sensitive = true\n}\nvariable "y" {}\n')
    (tmp_path / "a.tfvars").write_text('x = "some-value"\ny = "other-value"\nbroken = [\n')
    assert sensitive_values(tmp_path, [tmp_path / "a.tfvars"], {}) == ["some-value"]


def test_multi_line_secrets_are_masked_whole_and_line_by_line() -> None:
    redact = Redactor([PEM])
    lines = [redact(line) for line in ("key:\n" + PEM + "done").splitlines()]
    lines.append(redact(f'var.bundle is "{json.dumps(PEM)[1:-1]}"'))
    lines.append(redact("  " + PEM_LINES[1] + "  "))
    for line in lines:
        assert not _leaks(line)
    assert lines[0] == "key:" and lines[-3] == "done"


_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@hypothesis_settings(max_examples=300)
@given(
    secret=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=4, max_size=40),
    before=_text,
    after=_text,
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_no_output_line_ever_contains_a_registered_secret(
    secret: str, before: str, after: str, cuts: list[int]
) -> None:
    """For any secret embedded in any text, split into lines anywhere, no output line
    holds the secret, nor any line of a multi-line secret (≥ 4 characters)."""
    text = before + secret + after + secret
    for cut in sorted(set(cuts), reverse=True):
        text = text[: cut % (len(text) + 1)] + "\n" + text[cut % (len(text) + 1) :]
    redact = Redactor([secret])
    pieces = [secret] + [
        line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_SECRET_LENGTH
    ]
    for line in text.splitlines():
        out = redact(line)
        for piece in pieces:
            assert piece not in out


# --- credentials in INFRA_REPO ---------------------------------------------------------

TOKEN = "s3cr3t-T0KEN-value"
CREDENTIALED = [
    f"https://deploy-bot:{TOKEN}@127.0.0.1:9/infra.git",
    f"http://{TOKEN}@127.0.0.1:9/infra.git",
    f"ssh://deploy:{TOKEN}@127.0.0.1:9/infra.git",
]


@pytest.mark.parametrize("url", CREDENTIALED)
def test_credentials_in_the_repository_url_never_reach_errors(url: str, tmp_path: Path) -> None:
    """A closed loopback port: git fails, and neither its stderr nor our message holds it."""
    repo = InfraRepo(location=url, cache_dir=tmp_path)
    with pytest.raises(SourceError) as raised:
        repo.branch_tip("main")
    assert TOKEN not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)  # still says which repository failed
    assert TOKEN not in repo.display_location


def test_a_timed_out_clone_does_not_quote_the_credentials(tmp_path: Path, monkeypatch: Any) -> None:
    import subprocess

    def hang(argv: list[str], **kwargs: Any) -> None:
        raise subprocess.TimeoutExpired(argv, 600)

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(SourceError) as raised:
        InfraRepo(location=CREDENTIALED[0], cache_dir=tmp_path).branch_tip("main")
    assert TOKEN not in str(raised.value) and "timed out" in str(raised.value)


@pytest.mark.django_db
def test_credentials_in_infra_repo_never_reach_an_api_response(author: User, settings: Any) -> None:
    settings.INFRA_REPO = CREDENTIALED[0]
    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "Dev change", "environment": "dev"}, format="json"
    )
    assert response.status_code == 400
    assert "127.0.0.1" in response.content.decode()
    assert TOKEN not in response.content.decode()
    assert not Ticket.objects.exists()


def test_urls_lose_their_credentials_wherever_they_appear() -> None:
    text = f"fatal: unable to access '{CREDENTIALED[0]}' and {CREDENTIALED[2]}; git@host:x.git"
    clean = sanitize_urls(text)
    assert TOKEN not in clean and "deploy-bot" not in clean
    assert "https://[REDACTED]@127.0.0.1:9/infra.git" in clean and "git@host:x.git" in clean


# --- plan files --------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_plan_files_are_private_files_in_private_folders(
    author: User, infra_repo: Path, inline: list[int], tmp_path: Path, settings: Any
) -> None:
    from changecontrol.settings import plan_storage_config

    settings.STORAGES = {
        **settings.STORAGES,
        "plans": plan_storage_config(
            bucket="", endpoint_url=None, kms_key_id="", location=tmp_path / "plans"
        ),
    }
    Environment.objects.filter(name="dev").update(auto_deploy=False)
    ticket = drain(file_dev(author))
    plan = ticket.current_plan
    assert plan is not None and plan.plan_file.name
    stored = Path(plan.plan_file.path)
    assert stored.is_relative_to(tmp_path / "plans")
    assert _mode(stored) == 0o600
    assert _mode(stored.parent) == 0o700 and _mode(tmp_path / "plans") == 0o700
    # What Terraform itself writes (the workspace's state folder) is private too (a folder
    # may be traversable, never listable, by the sandbox's own uid).
    written = [tmp_path / "state", *(tmp_path / "state").rglob("*")]
    assert len(written) > 1 and all(
        _mode(p) & (0o066 if p.is_dir() else 0o077) == 0 for p in written
    ), [(p, oct(_mode(p))) for p in written]
    # Never served: no API field names the file or a URL to it.
    client = api_for(author)
    body = client.get(f"/api/v1/runs/{plan.pk}/").content.decode()
    body += client.get(f"/api/v1/tickets/{ticket.pk}/").content.decode()
    assert plan.plan_file.name not in body and '"plan_file"' not in body


def test_terraform_work_dirs_are_private(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    spec = runner.RunSpec(
        binary="terraform",
        repo=InfraRepo(location=str(tmp_path / "missing"), cache_dir=tmp_path),
        commit_sha="0" * 40,
        terraform_dir="terraform",
        workspace="dev",
        var_file="x.tfvars",
        provider_mirror=tmp_path / "mirror",
        plugin_cache=tmp_path / "cache",
        work_root=root,
    )
    result = runner.plan(spec, lambda line: None)
    assert not result.ok  # the repository does not exist; the work root was made private
    # Nobody else may list or write it (as root it stays traversable for the sandbox's
    # own uid, which reaches its run's folder and nothing else).
    assert _mode(root) & 0o066 == 0 and _mode(root) & 0o700 == 0o700


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kms_key", ["", "alias/plans"])
def test_plan_files_on_s3_are_encrypted_at_rest(
    author: User,
    infra_repo: Path,
    inline: list[int],
    settings: Any,
    monkeypatch: Any,
    kms_key: str,
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from changecontrol.settings import plan_storage_config

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="portal-plans")
        key_id = ""
        if kms_key:
            kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        settings.STORAGES = {
            **settings.STORAGES,
            "plans": plan_storage_config(
                bucket="portal-plans",
                endpoint_url=endpoint,
                kms_key_id=key_id,
                location=Path("unused"),
            ),
        }
        Environment.objects.filter(name="dev").update(auto_deploy=False)
        ticket = drain(file_dev(author))
        plan = ticket.current_plan
        assert plan is not None and plan.plan_file.name
        head = s3.head_object(Bucket="portal-plans", Key=plan.plan_file.name)
        if kms_key:
            assert head["ServerSideEncryption"] == "aws:kms"
            assert key_id in head["SSEKMSKeyId"]
        else:
            assert head["ServerSideEncryption"] == "AES256"
        acl = s3.get_object_acl(Bucket="portal-plans", Key=plan.plan_file.name)
        assert all("AllUsers" not in str(g["Grantee"]) for g in acl["Grants"])
        # The worker reads it back to apply the approved plan.
        from django.db import transaction

        from deployments import services

        with transaction.atomic():
            services.apply_start(services.locked_ticket(ticket.pk), actor=author)
        ticket = drain(ticket)
        assert ticket.runs.get(kind=RunKind.APPLY).exit_code == 0, ticket.status_reason
    finally:
        server.stop()


# --- concurrent first plans --------------------------------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_plans_in_a_new_workspace_both_succeed(
    infra_repo: Path, head_sha: str, settings: Any, tmp_path: Path
) -> None:
    """Both find no workspace and both create it; the loser selects the winner's."""
    from deployments.terraform.sandbox import SandboxConfig

    real = runner.find_binary(settings.TERRAFORM_BIN)
    gate = tmp_path / "gate"
    gate.mkdir()
    # `workspace new` waits until both runs reach it, so the race happens every time.
    wrapper = tmp_path / "racing-terraform"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = workspace ] && [ "$2" = new ]; then\n'
        f'  touch "{gate}/$$"; i=0\n'
        f'  while [ "$(ls "{gate}" | wc -l)" -lt 2 ] && [ $i -lt 600 ]; do\n'
        "    sleep 0.05; i=$((i+1))\n"
        "  done\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    from deployments.services.runs.spec import infra_repo as repo_of

    def spec(index: int) -> runner.RunSpec:
        return runner.RunSpec(
            binary=str(wrapper),
            repo=repo_of(),
            commit_sha=head_sha,
            terraform_dir="terraform",
            workspace="brand-new",
            var_file="environments/dev/terraform.tfvars",
            provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR,
            plugin_cache=tmp_path / f"plugin-cache-{index}",
            work_root=tmp_path / "work",
            backend_config=tuple(settings.TERRAFORM_BACKEND_CONFIG),
            timeout=600,
            # Sandboxed, the worker makes the workspace's folder before Terraform starts and
            # the race cannot happen; it still can unsandboxed or with a remote backend.
            sandbox=SandboxConfig(backend="none"),
        )

    results: dict[int, runner.PlanResult] = {}
    logs: dict[int, list[str]] = {0: [], 1: []}

    def one(index: int) -> None:
        results[index] = runner.plan(spec(index), logs[index].append)

    threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(list(gate.iterdir())) == 2  # both really tried to create it
    for index in (0, 1):
        assert results[index].ok, "\n".join(logs[index][-30:])
        assert results[index].summary["add"] > 0


def test_init_infra_repo_names_a_remote_without_its_credentials(
    settings: Any, tmp_path: Path
) -> None:
    from django.core.management import CommandError, call_command

    settings.INFRA_REPO = CREDENTIALED[0]
    settings.TERRAFORM_HOME = tmp_path / "terraform"
    with pytest.raises(CommandError) as raised:
        call_command("init_infra_repo")
    assert "is remote" in str(raised.value) and TOKEN not in str(raised.value)


@pytest.mark.django_db
def test_the_admin_never_links_to_a_plan_file() -> None:
    from django.test import Client

    from tests.helpers.factories import RunFactory

    run = RunFactory(plan_file="plans/ticket-1/run-1.tfplan")
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    response = client.get(f"/admin/deployments/terraformrun/{run.pk}/change/")
    assert response.status_code == 200
    assert "run-1.tfplan" not in response.content.decode()


@pytest.mark.django_db
def test_the_embedded_sqlite_database_is_readable_only_by_the_portal() -> None:
    """Embedded mode's database holds sessions, TOTP secrets and key digests: like plan
    files, only the portal's user may read it (and its WAL files)."""
    from django.db import connection, connections

    if connection.vendor != "sqlite":
        pytest.skip("the SQLite file of embedded mode")
    database = Path(connection.settings_dict["NAME"])
    candidates = (database, Path(f"{database}-wal"), Path(f"{database}-shm"))
    for path in candidates:
        if path.exists():
            path.chmod(0o644)  # as a default umask leaves a new file
    fresh = connections.create_connection("default")  # as the next request or worker opens
    try:
        fresh.ensure_connection()
        files = [path for path in candidates if path.exists()]
    finally:
        fresh.close()
    assert database in files
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


class _GitOverHTTP:
    """A git smart-HTTP server on loopback (git http-backend behind Basic auth)."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        import base64
        import http.server
        import os
        import subprocess

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.refused = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def _cgi(self) -> None:
                if self.headers.get("Authorization") != expected:
                    server.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "GIT_PROJECT_ROOT": str(root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(length),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1",
                }
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                ).stdout
                head, _, rest = out.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_credentials_of_a_remote_repository_reach_git_only_through_its_environment(
    infra_repo: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """Cloned and fetched over real HTTP with Basic auth: the credentials work, yet no git
    command line (visible to every local user in `ps`) and no file of the mirror holds them."""
    import subprocess

    from deployments.terraform.source import _work_git

    server = _GitOverHTTP(infra_repo.parent, "ci-bot", TOKEN)
    seen: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append([str(a) for a in argv])
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording_run)
    try:
        url = f"http://ci-bot:{TOKEN}@127.0.0.1:{server.port}/{infra_repo.name}/.git"
        repo = InfraRepo(location=url, cache_dir=tmp_path / "cache")
        assert repo.branch_tip("main") == _work_git(infra_repo, "rev-parse", "main")
        (infra_repo / "NOTES.md").write_text("a later commit\n")
        later = commit_all(infra_repo, "later")
        assert repo.branch_tip("main") == later  # fetched with the same credentials
        assert repo.has_commit(later)
        assert server.refused >= 1  # git really was asked for credentials, and gave them
        assert seen and not any(TOKEN in " ".join(argv) for argv in seen)
        for path in repo.git_dir.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
        wrong = InfraRepo(
            location=url.replace(TOKEN, "wrong-token-value"), cache_dir=tmp_path / "other"
        )
        with pytest.raises(SourceError) as raised:
            wrong.branch_tip("main")
        assert "wrong-token-value" not in str(raised.value)
    finally:
        server.close()
