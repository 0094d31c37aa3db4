"""Rego policies over a plan, evaluated with regopy (rego-cpp) in a sandboxed child process.

Policies come from the commit (hostile code like the rest of it) and from the portal, so
they never run in the worker's own process: :func:`evaluate` writes a frozen
:class:`RegoSpec` (the policies, the input document) into a fresh folder and starts
``rego_child.py`` on it with a fresh Python (``-I -S``: nothing of the portal on its path,
regopy alone added), inside the same wall as Terraform (:mod:`deployments.terraform.sandbox`:
bubblewrap by default) **without network**, with CPU, memory and file limits, and a hard
time limit after which the whole process group is killed. Each policy is evaluated with
an interpreter of its own; the child appends one line per finished policy, so a policy
that never finishes is named, and every policy after it is reported as not evaluated.

A syntax error, a runtime error, a time-out or a crash is that policy's ``error``: the
service layer fails it closed (a hard failure naming the policy and the error).

No Django here: frozen spec in, frozen result out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployments.terraform.sandbox import (
    RUN_DIR_INSIDE,
    Limits,
    MountPlan,
    Sandbox,
    SandboxConfig,
    SandboxError,
    _popen,
    bwrap_argv,
    give_to_sandbox,
    run_identity,
)

LEVELS = ("advisory", "soft", "hard")
_CHILD = Path(__file__).with_name("rego_child.py")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
# What a policy folder may hold: bounded like everything read from a commit.
MAX_POLICY_FILES = 200
MAX_POLICY_BYTES = 256 * 1024
MANIFEST = "manifest.json"


class PolicyFolderError(Exception):
    """The policy folder of a commit cannot be read as policies (bad manifest, too big)."""


@dataclass(frozen=True)
class PolicyModule:
    """One Rego file: its path (shown in results and errors) and its text."""

    path: str
    source: str

    @property
    def package(self) -> str:
        found = _PACKAGE.search(self.source)
        return found.group(1) if found else ""

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.rego")


@dataclass(frozen=True)
class RegoJob:
    """One policy to evaluate (``mode="eval"``: its ``deny`` and ``warn`` sets over the
    input) or one test file to run (``mode="test"``: its ``test_*`` rules). ``modules`` is
    the policy's file first, then the library files it may import."""

    id: str
    modules: tuple[PolicyModule, ...]
    mode: str = "eval"


@dataclass(frozen=True)
class RegoSpec:
    jobs: tuple[RegoJob, ...]
    input: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    work_root: Path = Path(tempfile.gettempdir())
    memory_bytes: int = 1024**3


@dataclass(frozen=True)
class JobResult:
    id: str
    package: str = ""
    deny: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    error: str = ""
    tests: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class RegoResult:
    results: tuple[JobResult, ...]
    seconds: float = 0.0

    def by_id(self) -> dict[str, JobResult]:
        return {r.id: r for r in self.results}


# --- reading a policy folder ------------------------------------------------------------


def read_policy_folder(folder: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``.rego`` files under ``folder`` (relative path -> text) and its manifest
    (``manifest.json``; ``{}`` when absent). Symbolic links are not followed out of it.
    PolicyFolderError when the folder is too big or the manifest is not valid."""
    files: dict[str, str] = {}
    manifest: dict[str, Any] = {}
    if not folder.is_dir():
        return files, manifest
    base = folder.resolve()
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if base not in path.resolve().parents:
            continue
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST:
            manifest = parse_manifest(path.read_text(encoding="utf-8", errors="replace"))
            continue
        if not rel.endswith(".rego"):
            continue
        if len(files) >= MAX_POLICY_FILES:
            raise PolicyFolderError(f"more than {MAX_POLICY_FILES} .rego files")
        text = path.read_text(encoding="utf-8", errors="replace")
        total += len(text)
        if total > MAX_POLICY_BYTES:
            raise PolicyFolderError(f"the .rego files hold more than {MAX_POLICY_BYTES} bytes")
        files[rel] = text
    return files, manifest


def parse_manifest(text: str) -> dict[str, Any]:
    """``{"policies": {"<package>": {"level": ..., "environments": [...],
    "override_role": ...}}}``; PolicyFolderError naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PolicyFolderError(f"{MANIFEST} is not JSON: {exc}") from None
    policies = data.get("policies") if isinstance(data, dict) else None
    if not isinstance(policies, dict):
        raise PolicyFolderError(f'{MANIFEST} needs a "policies" object')
    for name, entry in policies.items():
        if not isinstance(entry, dict):
            raise PolicyFolderError(f"{MANIFEST}: {name} must be an object")
        level = entry.get("level", "hard")
        if level not in LEVELS:
            raise PolicyFolderError(f"{MANIFEST}: {name} has level {level!r}, not one of {LEVELS}")
        envs = entry.get("environments", ["*"])
        if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
            raise PolicyFolderError(f"{MANIFEST}: {name}'s environments must be a list of names")
        role = entry.get("override_role", "")
        if not isinstance(role, str):
            raise PolicyFolderError(f"{MANIFEST}: {name}'s override_role must be a string")
    return data


# --- the input document -------------------------------------------------------------------

MASK = "(sensitive value)"


def _mask_marked(values: Any, marks: Any) -> Any:
    if marks is True:
        return MASK
    if isinstance(marks, dict) and isinstance(values, dict):
        return {k: _mask_marked(v, marks.get(k)) for k, v in values.items()}
    if isinstance(marks, list) and isinstance(values, list):
        return [_mask_marked(v, marks[i] if i < len(marks) else None) for i, v in enumerate(values)]
    return values


def _mask_strings(value: Any, redact: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _mask_strings(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_strings(v, redact) for v in value]
    return value


def masked_plan(plan: dict[str, Any], redact: Any = None) -> dict[str, Any]:
    """`terraform show -json`'s document as policies see it: values Terraform marks
    sensitive replaced by ``"(sensitive value)"`` (resource changes, drift, outputs,
    sensitive variables), every other known secret masked by ``redact``, and the prior
    state left out (values of resources the plan does not touch)."""
    declared = (((plan.get("configuration") or {}).get("root_module") or {}).get("variables")) or {}
    out: dict[str, Any] = {
        key: plan[key]
        for key in (
            "format_version",
            "terraform_version",
            "applyable",
            "complete",
            "errored",
            "timestamp",
            "configuration",
            "relevant_attributes",
        )
        if key in plan
    }
    out["variables"] = {
        name: ({"value": MASK} if (declared.get(name) or {}).get("sensitive") else var)
        for name, var in (plan.get("variables") or {}).items()
    }
    for key in ("resource_changes", "resource_drift"):
        changes = []
        for rc in plan.get(key) or []:
            rc = dict(rc)
            change = dict(rc.get("change") or {})
            for values_key, marks_key in (
                ("after", "after_sensitive"),
                ("before", "before_sensitive"),
            ):
                if values_key in change:
                    change[values_key] = _mask_marked(change[values_key], change.get(marks_key))
            rc["change"] = change
            changes.append(rc)
        out[key] = changes
    outputs = {}
    for name, oc in (plan.get("output_changes") or {}).items():
        oc = dict(oc)
        for values_key, marks_key in (("after", "after_sensitive"), ("before", "before_sensitive")):
            if oc.get(marks_key) is True:
                oc[values_key] = MASK
        outputs[name] = oc
    out["output_changes"] = outputs
    return _mask_strings(out, redact) if redact is not None else out


# --- evaluating -----------------------------------------------------------------------------


def _python() -> Path:
    return Path(os.path.realpath(sys.executable))


def _regopy_paths() -> list[Path]:
    """regopy's package folder and its bundled libraries' folder (read-only inside)."""
    import regopy

    package = Path(regopy.__file__).resolve().parent
    paths = [package]
    libs = package.with_name("regopy.libs")
    if libs.is_dir():
        paths.append(libs)
    return paths


def _reachable_by_others(path: Path) -> bool:
    """Whether a uid other than the owner can reach ``path`` (every parent traversable)."""
    for part in (path, *path.parents):
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def evaluate(spec: RegoSpec) -> RegoResult:
    """Run every job of ``spec`` in sandboxed children, at most ``spec.timeout`` seconds in
    all. A job whose child died (a crash of the evaluator, the memory limit) is that job's
    error and a new child takes the jobs after it; at the time limit, the job running is
    an error ("timed out") and every job after it too ("not evaluated")."""
    started = time.monotonic()
    deadline = started + spec.timeout
    spec.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    package_paths = _regopy_paths()
    python = _python()
    prefix = Path(sys.base_prefix).resolve()
    found: dict[str, JobResult] = {}
    pending = list(spec.jobs)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            first = pending[0]
            found[first.id] = JobResult(
                id=first.id, error=f"timed out after {spec.timeout:g} seconds"
            )
            for job in pending[1:]:
                found[job.id] = JobResult(
                    id=job.id,
                    error=f"not evaluated: {_job_name(first)} used up the "
                    f"{spec.timeout:g} seconds policies may take",
                )
            break
        folder = Path(tempfile.mkdtemp(prefix="rego-", dir=spec.work_root))
        try:
            _write_spec(folder, pending, spec.input, package_paths)
            code, timed_out, output = _run_child(
                spec, remaining, folder, python, prefix, package_paths
            )
            lines = _read_results(folder / "results.jsonl")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        found.update(lines)
        pending = [job for job in pending if job.id not in found]
        if not pending:
            break
        if timed_out:
            continue  # the loop's top names the job and those after it
        tail = " ".join(output.split())[-300:]
        found[pending[0].id] = JobResult(
            id=pending[0].id,
            error=f"the evaluator stopped (exit code {code}){': ' + tail if tail else ''}",
        )
        pending = pending[1:]
    return RegoResult(
        results=tuple(found[job.id] for job in spec.jobs), seconds=time.monotonic() - started
    )


def _job_name(job: RegoJob) -> str:
    return job.modules[0].path if job.modules else job.id


def _write_spec(
    folder: Path, jobs: list[RegoJob], input_doc: dict[str, Any], package_paths: list[Path]
) -> None:
    (folder / "home").mkdir()
    shutil.copyfile(_CHILD, folder / "rego_child.py")
    document = {
        "python_path": sorted({str(p.parent) for p in package_paths}),
        "jobs": [
            {
                "id": job.id,
                "mode": job.mode,
                "package": job.modules[0].package if job.modules else "",
                "modules": [[m.path, m.source] for m in job.modules],
            }
            for job in jobs
        ],
        "input": input_doc,
    }
    (folder / "spec.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "results.jsonl").write_text("", encoding="utf-8")


def _read_results(path: Path) -> dict[str, JobResult]:
    found: dict[str, JobResult] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        try:
            data = json.loads(line)
            job_id = str(data["id"])
        except (ValueError, KeyError, TypeError):
            continue
        found[job_id] = JobResult(
            id=job_id,
            package=str(data.get("package", "")),
            deny=tuple(str(m) for m in data.get("deny", [])),
            warn=tuple(str(m) for m in data.get("warn", [])),
            error=str(data.get("error", "")),
            tests=tuple((str(t["name"]), bool(t["passed"])) for t in data.get("tests", [])),
        )
    return found


def _run_child(
    spec: RegoSpec,
    timeout: float,
    folder: Path,
    python: Path,
    prefix: Path,
    package_paths: list[Path],
) -> tuple[int, bool, str]:
    """Start the child in the configured wall, wait at most ``spec.timeout`` seconds, kill
    its whole group after that. Returns (exit code, timed out, its output)."""
    cpu = max(1, int(timeout) + 1)
    limits = Limits(
        cpu_seconds=cpu,
        # rego-cpp's allocator (snmalloc) reserves far more address space than it uses, so
        # no RLIMIT_DATA: the parent watches the group's resident memory instead.
        memory_bytes=resource.RLIM_INFINITY,
        processes=16,
        open_files=256,
        file_bytes=64 * 1024**2,
        tmp_bytes=16 * 1024**2,
    )
    config = replace(spec.sandbox, limits=limits, network="none")
    with tempfile.TemporaryFile() as out:
        if config.backend == "bwrap":
            readonly = tuple(dict.fromkeys([prefix, *package_paths]))
            plan = MountPlan(
                binary=python,
                workdir=folder,
                cwd=folder,
                home=folder / "home",
                run_dir=folder,
                readonly=readonly,
                hidden=config.hidden_paths,
                env={"HOME": str(RUN_DIR_INSIDE / "home"), "PYTHONDONTWRITEBYTECODE": "1"},
            )
            command = [str(python), "-I", "-S", str(RUN_DIR_INSIDE / "rego_child.py")]
            command.append(str(RUN_DIR_INSIDE))
            proc = _spawn_bwrap(config, plan, command, out, [prefix, *package_paths, python])
        else:
            # `none`, and `container` (whose image holds Terraform, not Python): a child
            # process of the worker with the same limits and time limit, unisolated.
            command = [str(python), "-I", "-S", str(folder / "rego_child.py"), str(folder)]
            proc = _popen(
                command,
                {"HOME": str(folder / "home"), "PYTHONDONTWRITEBYTECODE": "1"},
                folder,
                out,
                out,
                (),
                None,
                limits=limits,
            )
        deadline = time.monotonic() + timeout
        timed_out = False
        timed_out = over_memory = False
        while proc.poll() is None:
            timed_out = time.monotonic() > deadline
            over_memory = _group_rss(proc.pid) > spec.memory_bytes
            if timed_out or over_memory:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.02)
        out.seek(0)
        output = out.read(8192).decode(errors="replace")
        if over_memory:
            output = f"stopped: it used more than {spec.memory_bytes // 1024**2} MiB of memory"
        return proc.returncode if proc.returncode is not None else -9, timed_out, output


def _group_rss(pgid: int) -> int:
    """Resident bytes of every process in process group ``pgid`` (the sandbox's)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def _spawn_bwrap(
    config: SandboxConfig, plan: MountPlan, command: list[str], out: Any, needed: list[Path]
) -> Any:
    """bubblewrap around the child, no network. As root it drops to the sandbox's uid
    when that uid can reach the interpreter and regopy (else it stays root inside its own
    user namespace, still walled in: nothing writable but its folder, no network)."""
    sandbox = Sandbox(config)
    bwrap = sandbox._tool("bwrap", "TERRAFORM_SANDBOX=bwrap")
    identity = run_identity(config)
    if identity is not None and not all(_reachable_by_others(p) for p in needed):
        identity = None
    if identity is not None:
        give_to_sandbox(config, [plan.run_dir])
        os.chmod(plan.run_dir, 0o700)
    # bwrap reports the sandbox's PID on --info-fd; nobody needs it here.
    info = os.open(os.devnull, os.O_WRONLY)
    try:
        argv = bwrap_argv(
            plan,
            command,
            config,
            network=False,
            data_fds={},
            info_fd=info,
            block_fd=None,
            bwrap=bwrap,
        )
        return _popen(
            argv,
            {"PATH": "/usr/bin:/bin"},
            None,
            out,
            out,
            (info,),
            identity,
            limits=config.limits,
        )
    except OSError as exc:
        raise SandboxError(f"the policy sandbox cannot start: {exc}") from None
    finally:
        os.close(info)
