"""The sandbox around every Terraform process (issue 17, items 1 and 3): what its argv
holds for each backend, that it fails closed, that Terraform sees only the environment and
files it should, and verified providers (lock file required, checksums enforced)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deployments.terraform import runner, sandbox
from deployments.terraform.sandbox import Limits, MountPlan, SandboxConfig
from deployments.terraform.source import InfraRepo, commit_all
from tests.helpers.paths import ROOT
from tests.helpers.sandbox import real_terraform

RUN = Path("/data/terraform/work/run-x")


def _plan(**extra: Any) -> MountPlan:
    return MountPlan(
        binary=Path("/usr/local/bin/terraform"),
        workdir=RUN / "src",
        cwd=RUN / "src" / "terraform",
        home=RUN / "home",
        run_dir=RUN,
        readonly=(RUN / "terraform.rc", Path("/venv/share/terraform-providers")),
        writable=(Path("/data/terraform/state/dev"),),
        hidden=(Path("/data"), Path("/usr/local/portal")),
        env={"HOME": "/terraform-run/home", "AWS_SECRET_ACCESS_KEY": "k"},
        **extra,
    )


def _pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == option]


def test_bwrap_argv_mounts_only_the_run_its_state_and_the_mirror() -> None:
    argv = sandbox.bwrap_argv(
        _plan(),
        ["/usr/local/bin/terraform", "plan"],
        SandboxConfig(limits=Limits(processes=99)),
        network=True,
        data_fds={"/etc/passwd": 7},
        info_fd=8,
        block_fd=9,
    )
    command = argv[argv.index("--") + 1 :]
    assert command == [
        "/usr/bin/prlimit",
        "--nproc=99:99",
        "--",
        "/usr/bin/setpriv",
        "--pdeathsig",
        "INT",
        "--",
        "/usr/local/bin/terraform",
        "plan",
    ]
    options = argv[: argv.index("--")]
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--disable-userns"):
        assert flag in options
    assert "--as-pid-1" in options and "--clearenv" in options
    assert "--die-with-parent" not in options  # SIGKILL would lose an apply's state
    # Read-write: the run's tree and home (at a fixed path inside) and its own state only.
    assert _pairs(options, "--bind") == [
        (str(RUN / "src"), "/terraform-run/src"),
        (str(RUN / "home"), "/terraform-run/home"),
        ("/data/terraform/state/dev", "/data/terraform/state/dev"),
    ]
    assert ("/venv/share/terraform-providers", "/venv/share/terraform-providers") in _pairs(
        options, "--ro-bind"
    )
    assert (str(RUN / "terraform.rc"), "/terraform-run/terraform.rc") in _pairs(
        options, "--ro-bind"
    )
    sources = [src for src, _ in _pairs(options, "--ro-bind") + _pairs(options, "--bind")]
    assert "/data" not in sources and str(RUN) not in sources  # never the whole folder
    assert "/etc" not in [src for src, _ in _pairs(options, "--ro-bind")]
    assert ("/etc/ssl", "/etc/ssl") in _pairs(options, "--ro-bind-try")
    # The project installed under /usr stays hidden; the root is read-only.
    assert options[options.index("/usr/local/portal") - 1] == "--tmpfs"
    assert options[options.index("--remount-ro") + 1] == "/"
    assert options[options.index("--chdir") + 1] == "/terraform-run/src/terraform"
    assert ("AWS_SECRET_ACCESS_KEY", "k") in _pairs(options, "--setenv")
    assert options[options.index("--block-fd") + 1] == "9"
    offline = sandbox.bwrap_argv(
        _plan(), ["t"], SandboxConfig(), network=False, data_fds={}, info_fd=8, block_fd=None
    )
    assert "--block-fd" not in offline and "--unshare-net" in offline


def test_container_argv_is_built_from_the_same_mount_plan() -> None:
    config = SandboxConfig(
        backend="container",
        engine="podman",
        image="registry.example/terraform:1.11",
        limits=Limits(cpu_seconds=60, memory_bytes=1024**3, processes=64),
    )
    argv = sandbox.container_argv(
        _plan(), ["/usr/local/bin/terraform", "plan"], config, network=False
    )
    assert argv[:3] == ["podman", "run", "--rm"]
    assert argv[-3:] == ["registry.example/terraform:1.11", "/usr/local/bin/terraform", "plan"]
    for flag in (
        "--network=none",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--pids-limit=64",
        f"--memory={1024**3}",
        "--ulimit=cpu=60:65",
        f"--user={sandbox.DEFAULT_UID}:{sandbox.DEFAULT_UID}",
        f"--volume={RUN / 'src'}:/terraform-run/src:rw",
        "--volume=/venv/share/terraform-providers:/venv/share/terraform-providers:ro",
        "--volume=/data/terraform/state/dev:/data/terraform/state/dev:rw",
        "--workdir=/terraform-run/src/terraform",
    ):
        assert flag in argv, flag
    # Values never on the command line: the engine reads each variable by name.
    assert "k" not in argv and argv[argv.index("AWS_SECRET_ACCESS_KEY") - 1] == "--env"
    assert "--network=bridge" in sandbox.container_argv(_plan(), ["t"], config, network=True)


def test_a_kubernetes_job_is_built_from_the_same_mount_plan() -> None:
    config = SandboxConfig(backend="container", image="registry.example/terraform:1.11")
    job = sandbox.kubernetes_job(
        _plan(),
        ["terraform", "plan"],
        config,
        name="run-7",
        claim="portal-data",
        secret="run-7-env",
        network=False,
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert job["spec"]["backoffLimit"] == 0 and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == sandbox.DEFAULT_UID
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["workingDir"] == "/terraform-run/src/terraform"
    assert container["envFrom"] == [{"secretRef": {"name": "run-7-env"}}]
    assert "k" not in str(container.get("env", ""))  # no value in the manifest
    writable = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly") is False}
    assert writable == {"/terraform-run/src", "/terraform-run/home", "/data/terraform/state/dev"}
    assert job["spec"]["template"]["metadata"]["labels"]["terraform-network"] == "none"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TERRAFORM_SANDBOX", "chroot"),
        ("TERRAFORM_SANDBOX_NETWORK", "host"),
        ("TERRAFORM_SANDBOX_CPU_SECONDS", "lots"),
        ("TERRAFORM_SANDBOX_WRITABLE_PATHS", "relative/path"),
        ("TERRAFORM_SANDBOX_IMAGE", ""),
    ],
)
def test_a_bad_sandbox_setting_stops_the_portal_naming_it(variable: str, value: str) -> None:
    env = {**os.environ, variable: value, "DJANGO_SETTINGS_MODULE": "changecontrol.settings"}
    if variable == "TERRAFORM_SANDBOX_IMAGE":
        env["TERRAFORM_SANDBOX"] = "container"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and variable in result.stderr


def test_a_writable_path_inside_the_portals_data_is_refused(tmp_path: Path) -> None:
    config = SandboxConfig(writable_paths=(tmp_path / "data" / "x",), hidden_paths=(tmp_path,))
    with pytest.raises(ValueError, match="may not be writable"):
        config.validate()


@pytest.mark.django_db
def test_no_sandbox_warns_on_every_page_and_in_check_deploy(
    settings: Any, client: Any, author: Any
) -> None:
    from deployments.lib.system_checks import terraform_sandbox_check

    client.force_login(author)
    assert "Terraform runs are not isolated" not in client.get("/tickets/").content.decode()
    assert terraform_sandbox_check() == []
    settings.TERRAFORM_SANDBOX = "none"
    assert "Terraform runs are not isolated" in client.get("/tickets/").content.decode()
    client.logout()
    assert "Terraform runs are not isolated" in client.get("/accounts/login/").content.decode()
    (warning,) = terraform_sandbox_check()
    assert warning.id == "deployments.W017" and "TERRAFORM_SANDBOX=none" in warning.msg


# --- real Terraform in the real sandbox -----------------------------------------------------


def _spec(repo: Path, sha: str, tmp_path: Path, settings: Any, **extra: Any) -> runner.RunSpec:
    return runner.RunSpec(
        binary=runner.find_binary(settings.TERRAFORM_BIN),
        repo=InfraRepo(location=str(repo), cache_dir=tmp_path / "cache"),
        commit_sha=sha,
        terraform_dir="terraform",
        workspace="dev",
        var_file="environments/dev/terraform.tfvars",
        provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR,
        plugin_cache=tmp_path / "unused",
        work_root=tmp_path / "work",
        backend_config=(f"workspace_dir={tmp_path / 'state'}",),
        timeout=600,
        sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
        **extra,
    )


@pytest.mark.terraform
def test_the_sandbox_fails_closed_when_bubblewrap_is_missing(
    infra_repo: Path, head_sha: str, tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        sandbox.shutil, "which", lambda name, **kw: None if name == "bwrap" else real_which(name)
    )
    lines: list[str] = []
    result = runner.plan(_spec(infra_repo, head_sha, tmp_path, settings), lines.append)
    assert not result.ok
    assert "the sandbox could not start: bwrap is not installed" in result.error
    assert not any(line.startswith("Initializing") for line in lines)  # nothing ran


@pytest.mark.terraform
def test_terraform_sees_only_the_fixed_variables_and_the_runs_credentials(
    infra_repo: Path, head_sha: str, tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    real = real_terraform(monkeypatch)
    wrapper = tmp_path / "bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = init ]; then env | sort; fi\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PORTAL_ONLY_SECRET", "never-for-terraform-123")
    lines: list[str] = []
    spec = dataclasses.replace(
        _spec(infra_repo, head_sha, tmp_path, settings),
        binary=str(wrapper),
        passthrough_env={"AWS_REGION": "eu-west-1"},
        credentials_env={"AWS_SECRET_ACCESS_KEY": "run-credential-value-42"},
    )
    result = runner.plan(spec, lines.append)
    assert result.ok, "\n".join(lines[-20:])
    names = {
        line.split("=", 1)[0]
        for line in lines[: lines.index(next(x for x in lines if "$ terraform workspace" in x))]
        if "=" in line and not line.startswith(("$", " ", "-"))
    }
    assert names == {
        "PATH",
        "HOME",
        "LANG",
        "PWD",  # the shell's own
        "TF_IN_AUTOMATION",
        "TF_INPUT",
        "CHECKPOINT_DISABLE",
        "TF_CLI_CONFIG_FILE",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
    }, names
    joined = "\n".join(lines)
    assert "never-for-terraform-123" not in joined and "run-credential-value-42" not in joined
    assert "AWS_SECRET_ACCESS_KEY=[REDACTED]" in joined


@pytest.mark.terraform
def test_a_stack_without_a_lock_file_is_refused_where_the_environment_requires_one(
    infra_repo: Path, tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    (infra_repo / "terraform" / ".terraform.lock.hcl").unlink()
    sha = commit_all(infra_repo, "no lock file")
    calls = tmp_path / "calls"
    wrapper = tmp_path / "bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\necho called >> {calls}\nexit 1\n")
    wrapper.chmod(0o755)
    spec = dataclasses.replace(
        _spec(infra_repo, sha, tmp_path, settings), binary=str(wrapper), require_lock_file=True
    )
    result = runner.plan(spec, lambda line: None)
    assert not result.ok
    assert "requires a dependency lock file (.terraform.lock.hcl)" in result.error
    assert not calls.exists()  # refused before Terraform ran
    # Where it is not required, the same commit plans (Terraform writes a lock file).
    real = dataclasses.replace(spec, binary=runner.find_binary(settings.TERRAFORM_BIN))
    assert runner.plan(dataclasses.replace(real, require_lock_file=False), lambda x: None).ok


@pytest.mark.django_db
def test_prod_requires_a_lock_file_and_no_environment_installs_from_the_network() -> None:
    from deployments.models import Environment

    assert Environment.objects.get(name="prod").require_lock_file
    assert not Environment.objects.filter(allow_provider_network=True).exists()


@pytest.mark.django_db
def test_changing_the_provider_rules_is_audited(admin_user: Any) -> None:
    from deployments.models import AuditEvent, Environment
    from deployments.services.environments import environment_save

    env = Environment.objects.get(name="staging")
    env.require_lock_file = True
    env.allow_provider_network = True
    environment_save(
        actor=admin_user, env=env, changed=["require_lock_file", "allow_provider_network"]
    )
    event = AuditEvent.objects.filter(action="environment.update").latest("id")
    assert event.data["changes"] == {
        "require_lock_file": {"from": False, "to": True},
        "allow_provider_network": {"from": False, "to": True},
    }


@pytest.mark.terraform
def test_a_provider_that_does_not_match_the_lock_file_never_runs(
    infra_repo: Path, head_sha: str, tmp_path: Path, settings: Any
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(settings.TERRAFORM_PROVIDER_MIRROR, mirror)
    (binary,) = mirror.rglob("terraform-provider-null_*")
    ran = tmp_path / "ran"
    ran.mkdir(mode=0o777)
    ran.chmod(0o777)
    binary.write_text(f"#!/bin/sh\ntouch {ran}/swapped-provider-ran\nexit 1\n")
    binary.chmod(0o755)
    lines: list[str] = []
    config = dataclasses.replace(settings.TERRAFORM_SANDBOX_CONFIG, writable_paths=(ran,))
    spec = dataclasses.replace(
        _spec(infra_repo, head_sha, tmp_path, settings),
        provider_mirror=mirror,
        sandbox=config,
        require_lock_file=True,
    )
    result = runner.plan(spec, lines.append)
    assert not result.ok and result.error == "terraform init failed"
    assert "-lockfile=readonly" in "\n".join(lines)
    assert "checksum" in "\n".join(lines).lower() or "does not match" in "\n".join(lines)
    assert not (ran / "swapped-provider-ran").exists()
    # The same mirror untouched: the plan runs.
    assert runner.plan(
        dataclasses.replace(spec, provider_mirror=settings.TERRAFORM_PROVIDER_MIRROR),
        lambda line: None,
    ).ok


@pytest.mark.terraform
def test_a_committed_terraform_folder_is_ignored(
    infra_repo: Path, tmp_path: Path, settings: Any
) -> None:
    planted = infra_repo / "terraform" / ".terraform" / "providers" / "planted"
    planted.parent.mkdir(parents=True)
    planted.write_text("a provider the commit brought")
    sha = commit_all(infra_repo, "brings its own .terraform")
    lines: list[str] = []
    result = runner.plan(_spec(infra_repo, sha, tmp_path, settings), lines.append)
    assert result.ok, "\n".join(lines[-20:])
    assert "note: the commit holds a .terraform folder; it is ignored (removed)" in lines


@pytest.mark.terraform
def test_an_expression_pinning_a_cpu_is_stopped_by_the_cpu_limit(
    infra_repo: Path, tmp_path: Path, settings: Any
) -> None:
    (infra_repo / "terraform" / "spin.tf").write_text(
        "locals {\n  spin = sum([for a in range(1024) : sum([for b in range(1024) :"
        " sum([for c in range(1024) : c])])])\n}\n"
        'output "spin" { value = local.spin }\n'
    )
    sha = commit_all(infra_repo, "spins")
    config = dataclasses.replace(settings.TERRAFORM_SANDBOX_CONFIG, limits=Limits(cpu_seconds=10))
    spec = dataclasses.replace(_spec(infra_repo, sha, tmp_path, settings), sandbox=config)
    lines: list[str] = []
    result = runner.plan(spec, lines.append)
    assert not result.ok
    assert "CPU-time limit" in result.error, (result.error, lines[-10:])
    assert "timed out" not in result.error


def test_files_the_runs_environment_names_are_readable_inside(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("cert")
    env = {
        "AWS_CA_BUNDLE": str(bundle),
        "AWS_CONFIG_FILE": str(tmp_path / "missing"),
        "SSL_CERT_FILE": "relative.pem",
        "AWS_SECRET_ACCESS_KEY": str(bundle),  # not a file variable: never mounted
    }
    assert sandbox.ca_paths(env) == [bundle]


@pytest.mark.parametrize(
    ("source", "fetches"),
    [
        ("./modules/network", False),
        ("../shared/vpc", False),
        ("hashicorp/null", False),  # a provider: installed from the mirror
        ("registry.terraform.io/hashicorp/null", False),
        ("terraform-aws-modules/vpc/aws", True),
        ("app.terraform.io/corp/k8s/azurerm", True),
        ("git::https://example.com/modules.git", True),
    ],
)
def test_init_gets_the_network_only_when_it_may_fetch_a_module(
    tmp_path: Path, source: str, fetches: bool
) -> None:
    (tmp_path / "main.tf").write_text(f'module "m" {{\n  source = "{source}"\n}}\n')
    assert runner._fetches_modules(tmp_path) is fetches
    (tmp_path / "extra.tf.json").write_text("{}")
    assert runner._fetches_modules(tmp_path) is True


def test_the_worker_never_follows_a_link_planted_in_the_working_copy(tmp_path: Path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text("the portal's key")
    planted = tmp_path / "portal.tfplan"
    planted.symlink_to(secret)
    with pytest.raises(OSError):
        runner.read_own_file(planted)
    runner._write_own_file(planted, b"plan")
    assert secret.read_text() == "the portal's key" and planted.read_bytes() == b"plan"


def test_only_a_flaked_network_setup_is_tried_again() -> None:
    flaked = ["bwrap: loopback: Failed RTM_NEWADDR: No child processes"]
    assert runner._sandbox_setup_flaked(flaked, 1)
    assert not runner._sandbox_setup_flaked(["bwrap: Can't find source path /x: No such file"], 1)
    assert not runner._sandbox_setup_flaked(["Error: loopback"], 1)
    assert not runner._sandbox_setup_flaked(flaked, 0)


@pytest.mark.terraform
def test_each_process_inside_holds_the_memory_open_file_and_file_size_limits(
    settings: Any, tmp_path: Path
) -> None:
    """What a hostile `local-exec` meets in the real bubblewrap sandbox: the open-file
    limit, memory (RLIMIT_DATA: an allocation past it fails), the size of any file it
    writes (cut there, the writer killed by SIGXFSZ)."""
    run = tmp_path / "run"
    (run / "src").mkdir(parents=True)
    (run / "home").mkdir()
    limits = Limits(open_files=64, memory_bytes=64 * 1024**2, file_bytes=1024**2)
    config = dataclasses.replace(settings.TERRAFORM_SANDBOX_CONFIG, backend="bwrap", limits=limits)
    plan = MountPlan(
        binary=Path("/bin/sh"),
        workdir=run / "src",
        cwd=run / "src",
        home=run / "home",
        run_dir=run,
        env={"HOME": "/terraform-run/home", "PATH": "/usr/bin:/bin"},
    )
    script = (
        "echo files=$(ulimit -n) data=$(ulimit -d);"
        " head -c 2000000 /dev/zero > /tmp/big; echo head=$?;"
        " echo size=$(stat -c %s /tmp/big);"
        ' awk "BEGIN { s = \\"a\\"; while (1) s = s s }"; echo awk=$?'
    )
    proc = sandbox.Sandbox(config).spawn(
        ["/bin/sh", "-c", script],
        plan,
        network=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = proc.stdout.read().decode()
    assert proc.wait() == 0, out
    assert "files=64 data=65536" in out  # ulimit -d is in KiB
    assert "head=153" in out and "size=1048576" in out  # 128 + SIGXFSZ (25)
    assert "cannot allocate" in out and "awk=2" in out
