"""The wall around every Terraform process: what it may see, reach, become and consume.

The code in a commit runs inside Terraform (plan-time functions and data sources,
providers, ``local-exec`` during apply), so every Terraform process the runner starts goes
through :meth:`Sandbox.spawn`, which builds the sandbox's argv *around* Terraform's. One
:class:`MountPlan` says what a process may see; each backend turns it into its own form:

``bwrap`` (default)
    Debian's bubblewrap: a user namespace (the worker's uid when it is not root; a
    dedicated unprivileged uid it drops to first when it is), its own PID, IPC, UTS and
    network namespaces, an empty root holding only the mount plan, no new user namespaces
    inside (``--disable-userns``). Network ``egress``: slirp4netns gives the namespace a
    user-mode uplink with ``--disable-host-loopback``, so cloud APIs are reachable and the
    host's 127.0.0.1 (PostgreSQL, Redis: no passwords there) is not; ``none``: loopback
    only.
``container``
    ``docker run`` / ``podman run``, one container per Terraform process, built from the
    same mount plan (for deployments where the worker itself runs in a container).
``none``
    Terraform runs as the worker's user, unisolated. Only when TERRAFORM_SANDBOX=none is
    set explicitly; every page then says so in red.

Signals. Terraform stops cleanly on one SIGINT (it writes its state and releases its
lock) and gives up at once on a second ("Two interrupts received"), so each process gets
exactly one: the runner signals only the process it started (:meth:`Process.interrupt`).
Under bubblewrap that is the outer ``bwrap``; Terraform is PID 1 of its namespace
(``--as-pid-1``) and its child, and ``setpriv --pdeathsig INT`` makes the death of that
``bwrap`` its SIGINT. The worker's own death reaches it the same way (the outer ``bwrap``
gets the parent-death signal), which is why ``--die-with-parent`` is not used: it sends
SIGKILL, and a Terraform killed mid-apply loses state and leaves the lock held. When PID 1
exits the kernel ends everything else in the namespace: nothing a provisioner left
running outlives the run. The process group (not a new session) is kept so that SIGKILL
to the group ends the whole sandbox at once after the grace period; the worker starts it
with ``setsid`` (no controlling terminal, so nothing to inject keystrokes into).

No Django here: the service layer turns settings into a :class:`SandboxConfig`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BACKENDS = ("bwrap", "container", "none")
NETWORKS = ("egress", "none")
ENGINES = ("docker", "podman")
# A uid no distribution allocates (Debian reserves 65000-65533): the sandbox's when the
# worker runs as root. Setting TERRAFORM_SANDBOX_UID.
DEFAULT_UID = 65432
# Where a run's own folder appears inside the sandbox: the same path for every run, and
# nothing of the host's layout (DATA_DIR, the work folder) to learn from it.
RUN_DIR_INSIDE = Path("/terraform-run")
# slirp4netns's fixed addresses: the namespace is 10.0.2.100, its DNS forwarder 10.0.2.3.
SLIRP_DNS = "10.0.2.3"
_NS_GET_USERNS = 0xB701  # ioctl: the user namespace owning a namespace
_PR_SET_PDEATHSIG = 1
# Read-only system folders of the host: programs and libraries, nothing else of /.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Of /etc, only what programs need to start, resolve names and check TLS certificates;
# passwd, group, hosts, nsswitch.conf and resolv.conf are generated.
_ETC_KEEP = (
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",  # Debian's /usr/bin/awk etc. are links into it
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/services",
    "/etc/protocols",
)
# Environment variables whose value names a file Terraform or a provider reads (a CA
# bundle, the AWS config and credentials files, a web-identity token): the operator's
# files, readable inside when the run's environment names them.
_FILE_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


class SandboxError(Exception):
    """The sandbox cannot be set up: the run fails with this reason, nothing runs."""


@dataclass(frozen=True)
class Limits:
    """What one Terraform process (and each process it starts) may consume.

    Per process, set with setrlimit: CPU seconds (an HCL expression pinning a CPU is
    stopped by SIGXCPU, then SIGKILL), memory as RLIMIT_DATA (heap and private writable
    mappings; not RLIMIT_AS, which Go's large address-space reservations trip over),
    open files, the size of any file written, no core dumps. Processes (threads count)
    as RLIMIT_NPROC, applied *inside* the sandbox's user namespace, where the kernel
    counts only that sandbox's processes (outside it, it would count every process of the
    worker's user). /tmp is a tmpfs of ``tmp_bytes``.
    """

    cpu_seconds: int = 600
    memory_bytes: int = 4 * 1024**3
    processes: int = 512
    open_files: int = 4096
    file_bytes: int = 4 * 1024**3
    tmp_bytes: int = 512 * 1024**2


@dataclass(frozen=True)
class SandboxConfig:
    """How Terraform is isolated (from settings: TERRAFORM_SANDBOX*)."""

    backend: str = "bwrap"
    network: str = "egress"
    # Used only when the worker runs as root: it drops to this uid/gid before the sandbox.
    uid: int = DEFAULT_UID
    gid: int = DEFAULT_UID
    limits: Limits = field(default_factory=Limits)
    # Extra host paths a run may read (a CA bundle, a wrapper's real binary) or write
    # (test harnesses only); never portal data.
    readonly_paths: tuple[Path, ...] = ()
    writable_paths: tuple[Path, ...] = ()
    # The portal's own folders (DATA_DIR, the project, the virtualenv): hidden even when
    # a system folder the sandbox shows (/usr) holds them.
    hidden_paths: tuple[Path, ...] = ()
    # The container backend: engine (docker or podman) and the image holding Terraform.
    engine: str = "docker"
    image: str = ""

    def validate(self) -> None:
        """Raise ValueError naming what is wrong (settings turn it into
        ImproperlyConfigured naming the variable)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {self.network!r}")
        if self.uid <= 0 or self.gid <= 0:
            raise ValueError("the sandbox uid and gid must be unprivileged (not 0)")
        if self.backend == "container":
            if self.engine not in ENGINES:
                raise ValueError(f"engine must be docker or podman, not {self.engine!r}")
            if not self.image:
                raise ValueError("the container backend needs an image holding Terraform")
        for path in (*self.readonly_paths, *self.writable_paths):
            if not path.is_absolute():
                raise ValueError(f"sandbox paths must be absolute, not {str(path)!r}")
        for path in self.writable_paths:
            for hidden in self.hidden_paths:
                if path == hidden or hidden in path.parents or path in hidden.parents:
                    raise ValueError(
                        f"{path} may not be writable by Terraform: it is (or holds) {hidden}"
                    )


@dataclass(frozen=True)
class MountPlan:
    """What one Terraform process sees. Everything else of the host is absent."""

    binary: Path
    # The run's exported commit (read-write) and Terraform's working directory inside it,
    # both inside ``run_dir`` (host paths; mounted under RUN_DIR_INSIDE, see ``inside``).
    workdir: Path
    cwd: Path
    home: Path
    run_dir: Path
    # Read-only: the CLI configuration, the provider mirror, extra paths.
    readonly: tuple[Path, ...] = ()
    # Read-write besides the working copy: this environment's own state folder.
    writable: tuple[Path, ...] = ()
    # Host paths that must stay invisible even when they lie inside a system folder
    # (a virtualenv or the project installed under /usr): covered by an empty tmpfs.
    hidden: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def inside(self, path: Path) -> Path:
        """Where a host path appears in the sandbox: the run's folder under
        RUN_DIR_INSIDE, everything else (binary, mirror, state) at its own path."""
        if path == self.run_dir or self.run_dir in path.parents:
            return RUN_DIR_INSIDE / path.relative_to(self.run_dir)
        return path


def running_as_root() -> bool:
    return os.geteuid() == 0


def run_identity(config: SandboxConfig) -> tuple[int, int] | None:
    """The uid/gid the sandbox's processes run as on the host, or None: the worker's own
    (a normal user: the user namespace is the wall; none: no wall)."""
    if config.backend == "bwrap" and running_as_root():
        return config.uid, config.gid
    return None


def give_to_sandbox(config: SandboxConfig, paths: Iterable[Path]) -> None:
    """Make ``paths`` (recursively) the sandbox user's, when it is not the worker's own:
    the working copy and the environment's state folder, so Terraform can write there."""
    identity = run_identity(config)
    if identity is None:
        return
    uid, gid = identity
    for top in paths:
        if not top.exists():
            continue
        os.chown(top, uid, gid, follow_symlinks=False)
        for folder, dirs, files in os.walk(top):
            for name in (*dirs, *files):
                os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


# --- argv builders (pure: unit-tested without any engine) -------------------------------


def _system_args() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--dir", "/etc"]
    for path in _ETC_KEEP:
        args += ["--ro-bind-try", path, path]
    return args


def _covered(path: Path, roots: Sequence[str]) -> bool:
    return any(path == Path(root) or Path(root) in path.parents for root in roots)


def bwrap_argv(
    plan: MountPlan,
    command: Sequence[str],
    config: SandboxConfig,
    *,
    network: bool,
    data_fds: Mapping[str, int],
    info_fd: int,
    block_fd: int | None,
    bwrap: str = "bwrap",
) -> list[str]:
    """bubblewrap's argv around ``command`` (Terraform's argv).

    ``data_fds`` maps generated files (/etc/passwd, /etc/resolv.conf, ...) to descriptors
    holding their content; ``info_fd`` receives the sandbox's PID; ``block_fd`` holds the
    command back until slirp4netns has configured the network (egress only).
    """
    args = [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--unshare-net",
        "--disable-userns",
        "--as-pid-1",
        "--hostname",
        "terraform",
        *_system_args(),
    ]
    for target, fd in sorted(data_fds.items()):
        args += ["--ro-bind-data", str(fd), target]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(config.limits.tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108 - its own
    for hidden in plan.hidden:
        if _covered(hidden, _SYSTEM_DIRS):
            args += ["--tmpfs", str(hidden)]
    args += ["--ro-bind", str(plan.binary), str(plan.inside(plan.binary))]
    for path in plan.readonly:
        args += ["--ro-bind", str(path), str(plan.inside(path))]
    for path in (plan.workdir, plan.home, *plan.writable):
        args += ["--bind", str(path), str(plan.inside(path))]
    # The empty root and the folders made for mount points: nothing to write there.
    args += ["--remount-ro", "/"]
    args += ["--chdir", str(plan.inside(plan.cwd)), "--clearenv"]
    for name, value in sorted(plan.env.items()):
        args += ["--setenv", name, value]
    args += ["--info-fd", str(info_fd)]
    if network and block_fd is not None:
        args += ["--block-fd", str(block_fd)]
    # Inside: the process limit counted in this user namespace only, then the parent-death
    # signal that turns the outer bwrap's end into Terraform's one SIGINT.
    return [
        *args,
        "--",
        "/usr/bin/prlimit",
        f"--nproc={config.limits.processes}:{config.limits.processes}",
        "--",
        "/usr/bin/setpriv",
        "--pdeathsig",
        "INT",
        "--",
        *command,
    ]


def container_argv(
    plan: MountPlan, command: Sequence[str], config: SandboxConfig, *, network: bool
) -> list[str]:
    """``docker run`` / ``podman run`` around ``command``, from the same mount plan.

    The environment's values are not on the command line (every local user can read it):
    ``-e NAME`` makes the engine take each from its own environment, which the runner
    sets. Signals: the engine's CLI forwards SIGINT to the container (``--sig-proxy``).
    """
    limits = config.limits
    args = [
        config.engine,
        "run",
        "--rm",
        "--interactive",
        "--sig-proxy=true",
        "--init",
        f"--network={'bridge' if network else 'none'}",
        f"--user={config.uid}:{config.gid}",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--pids-limit={limits.processes}",
        f"--memory={limits.memory_bytes}",
        f"--ulimit=cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
        f"--ulimit=nofile={limits.open_files}:{limits.open_files}",
        f"--ulimit=fsize={limits.file_bytes}:{limits.file_bytes}",
        "--ulimit=core=0:0",
        f"--tmpfs=/tmp:rw,size={limits.tmp_bytes},mode=1777",
    ]
    args += [f"--volume={plan.binary}:{plan.inside(plan.binary)}:ro"]
    for path in plan.readonly:
        args += [f"--volume={path}:{plan.inside(path)}:ro"]
    for path in (plan.workdir, plan.home, *plan.writable):
        args += [f"--volume={path}:{plan.inside(path)}:rw"]
    args += [f"--workdir={plan.inside(plan.cwd)}"]
    for name in sorted(plan.env):
        args += ["--env", name]
    return [*args, config.image, *command]


def kubernetes_job(
    plan: MountPlan,
    command: Sequence[str],
    config: SandboxConfig,
    *,
    name: str,
    claim: str,
    secret: str,
    network: bool,
) -> dict[str, Any]:
    """The same mount plan as a Kubernetes Job (one per Terraform process or run), for a
    dispatcher that runs Terraform as pods: the host paths live on the persistent volume
    claim ``claim`` (mounted by the worker at the same paths), every path read-only except
    the run's folder and its state; the environment comes from the Secret ``secret`` (the
    worker writes it per run), never from the manifest. ``network=False`` labels the pod
    for a deny-all egress NetworkPolicy."""
    limits = config.limits
    mounts = [
        {
            "name": "data",
            "mountPath": str(plan.inside(plan.binary)),
            "subPath": str(plan.binary).lstrip("/"),
            "readOnly": True,
        }
    ]
    for path in plan.readonly:
        mounts.append(
            {
                "name": "data",
                "mountPath": str(plan.inside(path)),
                "subPath": str(path).lstrip("/"),
                "readOnly": True,
            }
        )
    for path in (plan.workdir, plan.home, *plan.writable):
        mounts.append(
            {
                "name": "data",
                "mountPath": str(plan.inside(path)),
                "subPath": str(path).lstrip("/"),
                "readOnly": False,
            }
        )
    mounts.append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 - its own emptyDir
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "terraform-run"}},
        "spec": {
            "backoffLimit": 0,  # applies are never retried automatically
            "activeDeadlineSeconds": limits.cpu_seconds * 4,
            "template": {
                "metadata": {
                    "labels": {
                        "app": "terraform-run",
                        "terraform-network": "egress" if network else "none",
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": config.uid,
                        "runAsGroup": config.gid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "terraform",
                            "image": config.image,
                            "command": list(command),
                            "workingDir": str(plan.inside(plan.cwd)),
                            "envFrom": [{"secretRef": {"name": secret}}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "limits": {
                                    "memory": str(limits.memory_bytes),
                                    "ephemeral-storage": str(limits.tmp_bytes),
                                }
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": claim}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": str(limits.tmp_bytes)}},
                    ],
                },
            },
        },
    }


def generated_files(config: SandboxConfig, *, network: bool, uid: int, gid: int) -> dict[str, str]:
    """The /etc files of the sandbox: its own user, loopback names, and a resolver that
    is slirp4netns's DNS forwarder with egress (none without)."""
    return {
        "/etc/passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"terraform:x:{uid}:{gid}:terraform:/tmp:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "/etc/group": f"root:x:0:\nterraform:x:{gid}:\nnogroup:x:65534:\n",
        "/etc/hosts": "127.0.0.1 localhost terraform\n::1 localhost\n",
        "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
        "/etc/resolv.conf": f"nameserver {SLIRP_DNS}\n" if network else "",
    }


# --- starting a sandboxed process ---------------------------------------------------------


def _set_limits(limits: Limits) -> None:
    for which, value in (
        (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5)),
        (resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes)),
        (resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files)),
        (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:  # never above what the worker itself may use
            value = (min(value[0], hard), min(value[1], hard))
        resource.setrlimit(which, value)


def _child_setup(limits: Limits | None) -> None:
    """In the child, before exec (after Popen dropped to the sandbox's uid, if any).

    Terraform must hear SIGINT (its graceful stop), so it is restored to the default
    (Celery's pool processes ignore it, and an ignored signal is inherited across exec).
    Everything Terraform writes (state, plan files, .terraform) holds secrets in clear:
    umask 077. The parent-death signal is set last: changing uid clears it.
    """
    os.umask(0o077)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if limits is not None:
        _set_limits(limits)
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


class Process:
    """One started Terraform process, whatever wraps it."""

    def __init__(self, popen: subprocess.Popen[bytes], helper: subprocess.Popen[bytes] | None):
        self.popen = popen
        self.helper = helper  # slirp4netns, for egress

    @property
    def stdout(self) -> IO[bytes]:
        assert self.popen.stdout is not None
        return self.popen.stdout

    @property
    def pid(self) -> int:
        return self.popen.pid

    def interrupt(self) -> None:
        """Terraform's graceful stop: one SIGINT, to the process started (see the module
        docstring: never to the group, which would deliver two)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGINT)

    def alive(self) -> bool:
        """Is anything of it still running (Terraform outlives an interrupted bwrap)?"""
        self.popen.poll()
        try:
            os.killpg(self.popen.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the whole group: the outer bwrap and the sandbox's PID 1 with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.close()

    def wait(self) -> int:
        code = self.popen.wait()
        self.close()
        return code

    def close(self) -> None:
        """slirp4netns ends when the sandbox's processes are gone (it holds their end of a
        pipe); waited for here so it leaves no zombie."""
        if self.helper is not None and self.helper.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.helper.wait(timeout=5)
            if self.helper.poll() is None:
                self.helper.kill()
                self.helper.wait()


class Sandbox:
    """Starts Terraform processes inside the configured wall."""

    def __init__(self, config: SandboxConfig) -> None:
        config.validate()
        self.config = config

    def _tool(self, name: str, why: str) -> str:
        found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/bin:/bin")
        if not found:
            raise SandboxError(
                f"{name} is not installed, so Terraform cannot run isolated ({why}); "
                "install it (Debian: apt-get install bubblewrap slirp4netns), or "
                "set TERRAFORM_SANDBOX_NETWORK=none (no network) where only slirp4netns "
                "is missing"
            )
        return found

    def check(self, *, network: bool) -> None:
        """Fail closed before anything runs: the tools the backend needs are there."""
        if self.config.backend == "bwrap":
            self._tool("bwrap", "TERRAFORM_SANDBOX=bwrap")
            if network:
                self._tool("slirp4netns", "TERRAFORM_SANDBOX_NETWORK=egress")
        elif self.config.backend == "container":
            self._tool(self.config.engine, "TERRAFORM_SANDBOX=container")

    def spawn(
        self,
        command: Sequence[str],
        plan: MountPlan,
        *,
        network: bool,
        stdout: int | IO[bytes],
        stderr: int | IO[bytes],
        pass_fds: tuple[int, ...] = (),
    ) -> Process:
        """Start ``command`` (Terraform's argv) inside the sandbox."""
        network = network and self.config.network == "egress"
        backend = self.config.backend
        if backend == "bwrap":
            return self._spawn_bwrap(command, plan, network, stdout, stderr, pass_fds)
        if backend == "container":
            self.check(network=network)
            argv = container_argv(plan, command, self.config, network=network)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **plan.env}
            return Process(_popen(argv, env, None, stdout, stderr, pass_fds, None), None)
        # none: the worker's own user and view, the same environment; the per-process
        # limits still hold (the process count would be the worker user's: not set).
        popen = _popen(
            list(command),
            dict(plan.env),
            plan.cwd,
            stdout,
            stderr,
            pass_fds,
            None,
            limits=self.config.limits,
        )
        return Process(popen, None)

    def _spawn_bwrap(
        self,
        command: Sequence[str],
        plan: MountPlan,
        network: bool,
        stdout: int | IO[bytes],
        stderr: int | IO[bytes],
        pass_fds: tuple[int, ...],
    ) -> Process:
        bwrap = self._tool("bwrap", "TERRAFORM_SANDBOX=bwrap")
        slirp = self._tool("slirp4netns", "TERRAFORM_SANDBOX_NETWORK=egress") if network else ""
        identity = run_identity(self.config)
        uid, gid = identity if identity else (os.getuid(), os.getgid())
        to_close: list[int] = []
        try:
            data_fds = {}
            for target, text in generated_files(
                self.config, network=network, uid=uid, gid=gid
            ).items():
                fd = os.memfd_create("sandbox-etc")
                to_close.append(fd)
                os.write(fd, text.encode())
                os.lseek(fd, 0, os.SEEK_SET)
                data_fds[target] = fd
            info_r, info_w = os.pipe()
            to_close += [info_r, info_w]
            block_r = block_w = exit_r = exit_w = -1
            if network:
                block_r, block_w = os.pipe()
                # slirp4netns reads exit_r; its write end lives in the sandbox only, so the
                # network stays up exactly as long as something runs there (even after the
                # worker died, for Terraform's graceful stop), then slirp4netns exits.
                exit_r, exit_w = os.pipe()
                to_close += [block_r, block_w, exit_r, exit_w]
            argv = bwrap_argv(
                plan,
                command,
                self.config,
                network=network,
                data_fds=data_fds,
                info_fd=info_w,
                block_fd=block_r if network else None,
                bwrap=bwrap,
            )
            # The options (environment values included) go through a descriptor, not the
            # command line, which every local user can read in /proc; the command stays.
            split = argv.index("--")
            args_fd = os.memfd_create("sandbox-args")
            to_close.append(args_fd)
            os.write(args_fd, b"\0".join(a.encode() for a in argv[1:split]) + b"\0")
            os.lseek(args_fd, 0, os.SEEK_SET)
            fds = (*pass_fds, *data_fds.values(), info_w, args_fd)
            if network:
                fds += (block_r, exit_w)
            popen = _popen(
                [bwrap, "--args", str(args_fd), *argv[split:]],
                {"PATH": "/usr/bin:/bin"},
                None,
                stdout,
                stderr,
                fds,
                identity,
                limits=self.config.limits,
            )
            for fd in (*data_fds.values(), info_w, args_fd, block_r, exit_w):
                if fd >= 0:
                    os.close(fd)
                    to_close.remove(fd)
            child = _read_info(info_r)
            helper = None
            if network and child is not None:
                try:
                    helper = _start_slirp(slirp, child, exit_r, identity)
                except SandboxError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait()
                    raise
            if network:
                # Released (network up, or bwrap already failed: its error is its output).
                with contextlib.suppress(OSError):
                    os.write(block_w, b"1")
            return Process(popen, helper)
        finally:
            for fd in to_close:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _popen(
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path | None,
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
    pass_fds: tuple[int, ...],
    identity: tuple[int, int] | None,
    *,
    limits: Limits | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own: whoever stops the worker's group (a
    service manager, a test) does not reach it mid-write; the runner stops it itself."""
    extra: dict[str, Any] = {}
    if identity is not None:
        extra = {"user": identity[0], "group": identity[1], "extra_groups": []}
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=lambda: _child_setup(limits),
        pass_fds=pass_fds,
        **extra,
    )


def _read_info(fd: int) -> int | None:
    """The sandbox's PID (in the worker's namespace) from bwrap's --info-fd, or None when
    bwrap stopped before making it (its reason is on its output)."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue


def _start_slirp(
    slirp: str, child: int, exit_r: int, identity: tuple[int, int] | None
) -> subprocess.Popen[bytes]:
    """slirp4netns for the sandbox's network namespace, as the sandbox's own user.

    bwrap nests the sandbox's user namespace in the one owning its network namespace, so
    slirp4netns is pointed at that owner (NS_GET_USERNS), by descriptor: no PID race.
    """
    try:
        net_fd = os.open(f"/proc/{child}/ns/net", os.O_RDONLY)
    except OSError as exc:
        raise SandboxError(f"the sandbox ended before its network was set up: {exc}") from None
    ready_r, ready_w = os.pipe()
    # Its messages go to a file: a pipe nobody reads would block it, a closed one kill it.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    try:
        user_fd = fcntl.ioctl(net_fd, _NS_GET_USERNS)
        try:
            argv = [
                slirp,
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                f"--ready-fd={ready_w}",
                f"--exit-fd={exit_r}",
                f"--userns-path=/proc/self/fd/{user_fd}",
                "--netns-type=path",
                f"/proc/self/fd/{net_fd}",
                "tap0",
            ]
            helper = _popen(
                argv,
                {"PATH": "/usr/bin:/bin"},
                None,
                subprocess.DEVNULL,
                errors,
                (ready_w, exit_r, user_fd, net_fd),
                identity,
            )
        finally:
            os.close(user_fd)
        os.close(ready_w)
        ready_w = -1
        if os.read(ready_r, 1) != b"1":
            helper.wait()
            errors.seek(0)
            reason = errors.read().decode(errors="replace").strip().splitlines()
            raise SandboxError(
                "slirp4netns could not give the sandbox its network: "
                + (reason[-1] if reason else f"exit code {helper.returncode}")
            )
        return helper
    finally:
        errors.close()
        os.close(net_fd)
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)


def ca_paths(env: Mapping[str, str]) -> list[Path]:
    """Files named by the run's environment (CA bundles, AWS config): readable inside,
    or TLS and the provider's credential chain would fail there."""
    found = []
    for name in _FILE_VARIABLES:
        value = env.get(name, "")
        if value.startswith("/") and os.path.exists(value):
            found.append(Path(value))
    return found
