"""The Terraform path: what the portal adds to Terraform's own time, measured side by side.

    .venv/bin/python -m benchmarks.terraform_bench [--quick] [--only embedded|server]

Each configuration gets a throwaway DATA_DIR, its own database, the sample infrastructure
repository, a gunicorn web server and a real Celery worker process, configured as
`make run` configures them (2 web workers, 4 threads each; the worker's concurrency is said per
figure). Everything is driven through the HTTP API with an API key, as a user would.

Figures (one per line in the report):

* **plan ratio** — a re-plan through the API (``POST /api/v1/tickets/{id}/plan/`` until the
  run reads ``succeeded`` through ``GET /api/v1/runs/{id}/``) against raw ``terraform init``
  + ``workspace select`` + ``plan -out`` + ``show -json`` on the same stack (a fresh copy
  of the same commit, same CLI config), medians of ≥ 5 each, alternated.
* **deploy → Terraform started** — from the moment the client sends
  ``POST /api/v1/tickets/{id}/deploy/`` to the moment the first Terraform process of the
  apply run starts (a wrapper in TERRAFORM_BIN records the wall clock, then ``exec``s the
  real binary); dev tickets with auto-deploy switched off, so the deploy is a user's click.
* **log line → visible** — Terraform's output lines (the wrapper prints ``tick <epoch>``
  lines at uneven intervals before a plan) until they are readable through
  ``GET /api/v1/runs/{id}/`` (polled every 50 ms).
* **parallel plans** — N tickets re-planned at once, by a worker of concurrency 1 and 2.
* **worker memory** — peak RSS (VmHWM) of the Celery pool process that runs Terraform
  (the prefork child; Terraform's own processes are not counted) across a plan whose
  output is 100 MiB (2,000,000 lines; the stored log is capped at RUN_LOG_MAX_BYTES),
  against the same process's peak after an ordinary plan.
* **sandbox cost** — the runner's plan (init + workspace + plan + show -json, as a worker
  runs it) inside the bubblewrap sandbox (network ``egress``: slirp4netns) against the
  same runner with TERRAFORM_SANDBOX=none, alternated in one process, medians.
* **export** — what each run pays to get its commit's files (``InfraRepo.export_cached``
  on the sample stack, in-process): the copy from the per-commit cache, against the first
  export of a commit (``git archive``, unpacking, the cache entry's manifest).

Every Terraform process runs in the sandbox (docs/security.md), the benchmark's wrapper
too: its files live in a folder of their own under the system's temporary folder, which
the sandbox is told it may read (the wrapper, its mode file, the real binary) and write
(the start times).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Context, Figure, machine, median, ms, percentile

BIN = Path(sys.executable).parent
# How often the client asks the API whether a run or ticket moved on. Each ask costs the
# web server a few milliseconds of CPU, taken from Terraform on a 2-core machine, so not
# more often; it adds up to this much to the portal's side of each ratio.
POLL_SECONDS = 0.1
# How often the log-latency figure reads the run's log (the page itself asks every second).
LOG_POLL_SECONDS = 0.05
# The server configuration's own database (dropped and created each run: "<BENCH_DATABASE_URL's
# name>_terraform") and Redis database (flushed each run), apart from the pages benchmark's.
SERVER_DATABASE = (
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_portal")
    + "_terraform"
)
SERVER_DATABASE_NAME = SERVER_DATABASE.rsplit("/", 1)[1]
SERVER_ADMIN_URL = SERVER_DATABASE.rsplit("/", 1)[0] + "/postgres"
SERVER_BROKER = os.environ.get("BENCH_TERRAFORM_BROKER_URL", "redis://127.0.0.1:6379/7")
FLOOD_LINES = 2_000_000  # of 52 bytes: 100 MiB
FLOOD_LINE = "flood line %07d of the chatty provider output, padded"

# The wrapper: records when each Terraform process starts, and (by the mode file) prints
# paced timestamped lines or a flood of lines before a plan, as a chatty provider would.
WRAPPER = """#!/bin/sh
printf '%s %s\\n' "$(date +%s.%N)" "$1" >> {starts}
if [ "$1" = plan ]; then
  case "$(cat {mode} 2>/dev/null)" in
    paced)
      i=0
      while [ $i -lt {ticks} ]; do
        echo "tick $(date +%s.%N)"
        i=$((i + 1))
        if [ $((i % 4)) -eq 0 ]; then sleep 0.9; else sleep 0.12; fi
      done ;;
    flood)
      awk 'BEGIN {{ for (i = 1; i <= {flood}; i++)
        printf "{flood_line}\\n", i }}' ;;
  esac
fi
exec {real} "$@"
"""


class Unavailable(Exception):
    """The configuration cannot be measured here (PostgreSQL or Redis not reachable)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Stack:
    """One portal installation: data dir, database, web server, worker; driven over HTTP."""

    def __init__(self, ctx: Context, config: str) -> None:
        self.config = config
        self.work = ctx.work / f"terraform-{config}"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.data = self.work / "data"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "TERRAFORM_BIN")
        }
        env.update(
            DATA_DIR=str(self.data),
            DJANGO_SETTINGS_MODULE="changecontrol.settings",
            SECRET_KEY="bench-" + "x" * 50,
            API_THROTTLE_RATE="off",
        )
        if config == "server":
            if not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)):
                raise Unavailable("PostgreSQL or Redis is not reachable on 127.0.0.1")
            # Production mode (any non-SQLite database), served over plain HTTP on loopback.
            env.update(
                DATABASE_URL=SERVER_DATABASE,
                CELERY_BROKER_URL=SERVER_BROKER,
                SECURE_SSL_REDIRECT="false",
                SECURE_COOKIES="false",
            )
        self.env = env
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.key = ""
        # The wrapper's files, where the sandbox may be shown them (not inside the project,
        # which it never sees): read the wrapper and its mode, write the start times.
        self.tools = Path(tempfile.mkdtemp(prefix=f"ccp-bench-{config}-"))
        self.tools.chmod(0o755)
        (self.tools / "out").mkdir(mode=0o777)
        (self.tools / "out").chmod(0o777)
        self.starts = self.tools / "out" / "starts.log"
        self.mode = self.tools / "mode"
        self.wrapper = self.tools / "bin" / "terraform"
        self.settings_cache: dict[str, str] = {}

    # --- set-up -------------------------------------------------------------------

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "python"), str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def setup(self) -> None:
        if self.config == "server":
            self._recreate_database()
            import redis

            redis.Redis.from_url(SERVER_BROKER).flushdb()
        self.manage("migrate", "--noinput", "-v0")
        self.manage("init_infra_repo")
        self.key = self.shell(
            "from django.contrib.auth.models import Group, User\n"
            "from deployments.models import Environment\n"
            "from deployments.services.apikeys import api_key_create\n"
            "u, _ = User.objects.get_or_create(username='bench')\n"
            "u.groups.set([Group.objects.get(name='developer')])\n"
            "print(api_key_create(actor=u, user=u, name='bench')[1])\n",
        )
        binary = self.real_binary()
        self.wrapper.parent.mkdir(parents=True, exist_ok=True)
        self.wrapper.write_text(
            WRAPPER.format(
                starts=self.starts,
                mode=self.mode,
                ticks=24,
                flood=FLOOD_LINES,
                flood_line=FLOOD_LINE,
                real=binary,
            )
        )
        self.wrapper.chmod(0o755)
        self.mode.write_text("")
        self.mode.chmod(0o644)
        # Written by the wrapper as root (`terraform version`, asked outside the sandbox
        # once per binary) and as the sandbox's uid (every other command).
        self.starts.write_text("")
        self.starts.chmod(0o666)
        self.env["TERRAFORM_SANDBOX_READONLY_PATHS"] = f"{self.tools},{binary}"
        self.env["TERRAFORM_SANDBOX_WRITABLE_PATHS"] = str(self.tools / "out")

    def dev_auto_deploy(self, on: bool) -> None:
        """Off: a dev ticket stops at ``approved`` and its deploy is a user's click."""
        self.shell(
            "from deployments.models import Environment\n"
            f"print(Environment.objects.filter(name='dev').update(auto_deploy={on}))"
        )

    def _recreate_database(self) -> None:
        import psycopg

        with psycopg.connect(SERVER_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SERVER_DATABASE_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{SERVER_DATABASE_NAME}"')

    def shell(self, code: str) -> str:
        """Run code in `manage.py shell`; the last line it prints."""
        return self.manage("shell", "--no-imports", "-c", code).strip().splitlines()[-1]

    def real_binary(self) -> str:
        return self.shell(
            "from django.conf import settings\n"
            "from deployments.terraform import find_binary\n"
            "print(find_binary(settings.TERRAFORM_BIN))"
        )

    def settings_value(self, expression: str) -> str:
        return self.shell(f"from django.conf import settings\nprint({expression})")

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "changecontrol.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.base}/healthz", timeout=2).read()  # noqa: S310
                return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def start_worker(self, *, concurrency: int, wrapped: bool) -> None:
        self.stop_worker()
        env = dict(self.env)
        if wrapped:
            env["TERRAFORM_BIN"] = str(self.wrapper)
        self.worker = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "changecontrol",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"bench-{self.config}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "worker.log").open("ab"),
        )

    def worker_gone(self) -> str:
        """Why the worker is not running ("" while it is): its exit code and last output."""
        if self.worker is None or self.worker.poll() is None:
            return ""
        tail = (self.work / "worker.log").read_text(errors="replace")[-3000:]
        return f"the Celery worker exited with code {self.worker.returncode}:\n{tail}"

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker = None

    def close(self) -> None:
        self.stop_worker()
        if self.web is not None:
            self.web.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.web.wait(timeout=20)
            if self.web.poll() is None:
                self.web.kill()
        with contextlib.suppress(OSError):  # kept for a look after a failed run
            shutil.copy(self.work / "worker.log", self.work.parent / f"worker-{self.config}.log")
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.tools, ignore_errors=True)

    # --- the API ------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.base}/api/v1/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def ticket_new(self, title: str, environment: str = "dev") -> int:
        body = {"title": title, "environment": environment}
        return int(self.api("POST", "tickets/", body)["id"])

    def ticket_status(self, ticket_id: int) -> str:
        return str(self.api("GET", f"tickets/{ticket_id}/")["status"])

    def wait_ticket(self, ticket_id: int, wanted: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.ticket_status(ticket_id)
            if status == wanted:
                return
            if status.endswith("failed") or time.monotonic() > deadline:
                raise RuntimeError(f"ticket {ticket_id} is {status}, waiting for {wanted}")
            time.sleep(POLL_SECONDS)

    def wait_run(self, run_id: int, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.api("GET", f"runs/{run_id}/")
            if run["status"] in ("succeeded", "failed", "interrupted", "cancelled"):
                if run["status"] != "succeeded":
                    raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
                return run
            gone = self.worker_gone()
            if time.monotonic() > deadline or gone:
                raise RuntimeError(f"run {run_id} still {run['status']}. {gone}")
            time.sleep(POLL_SECONDS)

    def wait_settled(self, ticket_id: int, timeout: float = 180) -> str:
        """Wait until the ticket is out of ``planning`` (its run's outcome recorded)."""
        deadline = time.monotonic() + timeout
        while (status := self.ticket_status(ticket_id)) == "planning":
            gone = self.worker_gone()
            if time.monotonic() > deadline or gone:
                raise RuntimeError(f"ticket {ticket_id} still planning. {gone}")
            time.sleep(POLL_SECONDS)
        return status

    def replan(self, ticket_id: int) -> int:
        return int(self.api("POST", f"tickets/{ticket_id}/plan/", {"reason": "bench"})["id"])


@contextlib.contextmanager
def _stack(ctx: Context, config: str) -> Iterator[Stack]:
    stack = Stack(ctx, config)
    try:
        stack.setup()
        stack.start_web()
        yield stack
    finally:
        stack.close()


# --- raw Terraform ---------------------------------------------------------------------


def raw_plan(stack: Stack, binary: str, n: int) -> float:
    """init + workspace select + plan -out + show -json, as an operator would, on a fresh
    copy of the sample stack's commit, with the portal's CLI config (mirror + plugin cache)
    and the same state directory; the time of the four commands."""
    raw = stack.work / "raw" / str(n)
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    repo = stack.data / "infra-repo"
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", "HEAD", "terraform"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(raw)], input=archive, check=True)
    stack_dir = raw / "terraform"
    home = Path(stack.settings_cache["TERRAFORM_HOME"])
    rc = raw / "terraform.rc"
    mirror = stack.settings_cache["MIRROR"]
    rc.write_text(
        f'provider_installation {{\n  filesystem_mirror {{ path = "{mirror}" }}\n}}\n'
        f'plugin_cache_dir = "{home / "plugin-cache"}"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(raw),
        "TF_CLI_CONFIG_FILE": str(rc),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
    commands = [
        ["init", "-input=false", "-no-color", f"-backend-config=workspace_dir={home / 'state'}"],
        ["workspace", "select", "dev"],
        [
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=environments/dev/terraform.tfvars",
            "-out=raw.tfplan",
        ],
        ["show", "-json", "raw.tfplan"],
    ]
    start = time.perf_counter()
    for args in commands:
        subprocess.run([binary, *args], cwd=stack_dir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


# --- figures ---------------------------------------------------------------------------


def plan_ratio(stack: Stack, ticket_id: int, samples: int) -> list[Figure]:
    binary = stack.real_binary()
    portal, raw = [], []
    parts: dict[str, list[float]] = {"request": [], "queue": [], "worker": [], "seen": []}
    for n in range(samples):
        raw.append(raw_plan(stack, binary, n))
        sent = time.time()
        start = time.perf_counter()
        run_id = stack.replan(ticket_id)
        run = stack.wait_run(run_id)
        portal.append(time.perf_counter() - start)
        seen = time.time()
        created, started, finished = (
            dt.datetime.fromisoformat(run[key]).timestamp()
            for key in ("created_at", "started_at", "finished_at")
        )
        parts["request"].append(created - sent)
        parts["queue"].append(started - created)
        parts["worker"].append(finished - started)
        parts["seen"].append(seen - finished)
        stack.wait_ticket(ticket_id, "approved")
    ratio = median(portal) / median(raw)
    breakdown = ", ".join(f"{name} {ms(median(values))}" for name, values in parts.items())
    return [
        Figure(
            name=f"Re-plan via API / raw init+select+plan+show ({stack.config})",
            value=f"{median(portal):.3f} s",
            baseline=f"{median(raw):.3f} s",
            ratio=round(ratio, 2),
            target="≤ 1.10",
            met=ratio <= 1.10,
            note=(
                f"medians of {samples}, alternated; run state polled every "
                f"{POLL_SECONDS * 1000:.0f} ms; portal {_spread(portal)}, raw {_spread(raw)}; "
                "portal parts (medians; request: POST → run created, queue: → claimed, "
                f"worker: → outcome recorded, seen: → read by the client): {breakdown}"
            ),
        )
    ]


SANDBOX_COST_SCRIPT = """
import dataclasses, json, time
from deployments import terraform as tf
from deployments.models import Environment
from deployments.services._base import infra_repo
from deployments.services.runs.spec import terraform_spec
env = Environment.objects.get(name="dev")
sha = infra_repo().branch_tip("main")
spec = terraform_spec(
    environment=env, commit_sha=sha, workspace=env.workspace, var_file=env.var_file, timeout=600
)
unsandboxed = dataclasses.replace(spec, sandbox=dataclasses.replace(spec.sandbox, backend="none"))
times = {"bwrap": [], "none": []}
for i in range(%(samples)d + 1):
    pairs = [("bwrap", spec), ("none", unsandboxed)]
    for name, one in pairs if i %% 2 else reversed(pairs):
        start = time.perf_counter()
        result = tf.plan(one, lambda line: None)
        elapsed = time.perf_counter() - start
        assert result.ok, result.error
        if i:
            times[name].append(elapsed)
print(json.dumps(times))
"""


def sandbox_cost(stack: Stack, samples: int) -> list[Figure]:
    """The runner's plan in the bubblewrap sandbox against the same runner unsandboxed,
    alternated in one process (the first round of each is a warm-up)."""
    times = json.loads(stack.shell(SANDBOX_COST_SCRIPT % {"samples": samples}))
    sandboxed, bare = median(times["bwrap"]), median(times["none"])
    ratio = sandboxed / bare
    return [
        Figure(
            name=f"Plan in the sandbox / the same plan unsandboxed ({stack.config})",
            value=f"{sandboxed:.3f} s",
            baseline=f"{bare:.3f} s",
            ratio=round(ratio, 3),
            target="≤ 1.05",
            met=ratio <= 1.05,
            note=(
                f"medians of {samples}, alternated, runner.plan (init + workspace + plan + "
                "show -json) as the worker runs it: bubblewrap, slirp4netns egress for the "
                "plan (init, workspace and show offline: local modules and backend); cost "
                f"{ms(sandboxed - bare)} per plan; sandboxed {_spread(times['bwrap'])}, "
                f"unsandboxed {_spread(times['none'])}"
            ),
        )
    ]


def ticket_to_completed(stack: Stack, tickets: int) -> list[float]:
    """Seconds for a dev ticket filed through the API to reach ``completed`` (plan, apply,
    post-apply check: three Terraform runs). Measured while no other dev ticket waits: with
    auto-deploy on, every finished apply starts the next approved dev ticket."""
    totals = []
    for n in range(tickets):
        start = time.perf_counter()
        ticket_id = stack.ticket_new(f"end to end {n}")
        stack.wait_ticket(ticket_id, "completed", timeout=300)
        totals.append(time.perf_counter() - start)
    return totals


def completed_figure(stack: Stack, totals: list[float], raw_median: float) -> Figure:
    return Figure(
        name=f"Dev ticket filed → completed / one raw plan ({stack.config})",
        value=f"{median(totals):.3f} s",
        baseline=f"{raw_median:.3f} s",
        ratio=round(median(totals) / raw_median, 2),
        target="(none: three Terraform runs)",
        note=f"median of {len(totals)}; plan, apply and post-apply check, auto-deploy on",
    )


def _spread(values: list[float]) -> str:
    return f"min {min(values):.3f} / max {max(values):.3f} s"


def _starts_after(stack: Stack, t0: float) -> list[tuple[float, str]]:
    rows = []
    for line in stack.starts.read_text().splitlines():
        stamp, _, command = line.partition(" ")
        if float(stamp) >= t0:
            rows.append((float(stamp), command))
    return rows


def deploy_latency(stack: Stack, samples: int) -> list[Figure]:
    """Each sample: a dev ticket planned and approved (no approval needed), then deploy."""
    delays, after_response = [], []
    for n in range(samples):
        ticket_id = stack.ticket_new(f"deploy latency {n}")
        stack.wait_ticket(ticket_id, "approved")
        time.sleep(0.3)  # the plan's worker is idle again (its task has returned)
        t0 = time.time()
        run_id = int(stack.api("POST", f"tickets/{ticket_id}/deploy/")["id"])
        t1 = time.time()
        deadline = time.monotonic() + 60
        while not (started := _starts_after(stack, t0)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Terraform process started for run {run_id}")
            time.sleep(0.01)
        delays.append(started[0][0] - t0)
        after_response.append(started[0][0] - t1)
        stack.wait_run(run_id)
    target = 0.300 if stack.config == "server" else 0.500
    p95 = percentile(delays, 95)
    return [
        Figure(
            name=f"Deploy POST sent → Terraform process started, p95 ({stack.config})",
            value=ms(p95),
            baseline=f"p50 {ms(median(delays))}",
            target=f"p95 < {target * 1000:.0f} ms",
            met=p95 < target,
            note=(
                f"{samples} dev tickets; from the POST's response: p50 "
                f"{ms(median(after_response))}, p95 {ms(percentile(after_response, 95))}"
            ),
        )
    ]


def log_latency(stack: Stack, ticket_id: int) -> list[Figure]:
    stack.mode.write_text("paced")
    try:
        run_id = stack.replan(ticket_id)
        seen: dict[str, float] = {}
        while True:
            run = stack.api("GET", f"runs/{run_id}/")
            now = time.time()
            for line in run["log"].splitlines():
                if line.startswith("tick ") and line not in seen:
                    seen[line] = now
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(LOG_POLL_SECONDS)
    finally:
        stack.mode.write_text("")
    stack.wait_ticket(ticket_id, "approved")
    delays = [seen_at - float(line.split()[1]) for line, seen_at in seen.items()]
    if not delays:
        raise RuntimeError("no paced line reached the API")
    p95 = percentile(delays, 95)
    return [
        Figure(
            name=f"Terraform output line → readable via the run API, p95 ({stack.config})",
            value=ms(p95),
            baseline=f"p50 {ms(median(delays))}, max {ms(max(delays))}",
            target="p95 < 1 s",
            met=p95 < 1.0,
            note=(
                f"{len(delays)} lines printed at 0.12 s and 0.9 s intervals; "
                f"GET /api/v1/runs/{{id}}/ polled every {LOG_POLL_SECONDS * 1000:.0f} ms"
            ),
        )
    ]


def parallel_plans(stack: Stack, tickets: list[int]) -> list[Figure]:
    """All ``tickets`` re-planned at once; each figure from the first POST to the last run
    read ``succeeded``. Plans of one workspace take turns on its state lock, so the tickets
    alternate between dev and staging."""
    totals = {}
    for workers in (1, 2):
        stack.start_worker(concurrency=workers, wrapped=False)
        stack.wait_run(stack.replan(tickets[0]))  # the worker is up and warm
        stack.wait_settled(tickets[0])
        start = time.perf_counter()
        run_ids = [stack.replan(t) for t in tickets]
        for run_id in run_ids:
            stack.wait_run(run_id)
        totals[workers] = time.perf_counter() - start
        for t in tickets:
            stack.wait_settled(t)
    speedup = totals[1] / totals[2]
    return [
        Figure(
            name=f"{len(tickets)} re-plans at once: worker concurrency 2 vs 1 ({stack.config})",
            value=f"{totals[2]:.2f} s",
            baseline=f"{totals[1]:.2f} s",
            ratio=round(totals[2] / totals[1], 2),
            target="faster with 2 (2 cores)",
            met=speedup > 1.0,
            note=f"speed-up {speedup:.2f} times; dev and staging tickets alternating",
        )
    ]


def _pool_child(worker: subprocess.Popen[bytes]) -> int:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one pool process, found {children}")
    return int(children[0])


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def worker_memory(stack: Stack, ticket_id: int) -> list[Figure]:
    stack.start_worker(concurrency=1, wrapped=True)
    for _ in range(2):  # warm: imports, connections, the first plan's allocations
        stack.wait_run(stack.replan(ticket_id))
        stack.wait_ticket(ticket_id, "approved")
    assert stack.worker is not None
    child = _pool_child(stack.worker)
    before = _hwm_kib(child)
    stack.mode.write_text("flood")
    try:
        run = stack.wait_run(stack.replan(ticket_id), timeout=600)
    finally:
        stack.mode.write_text("")
    stack.wait_ticket(ticket_id, "approved")
    after = _hwm_kib(child)
    if "of output dropped here" not in run["log"] and run["log_size"] < 1024 * 1024:
        raise RuntimeError("the flood did not reach the log")
    stored = run["log_size"]
    rise = (after - before) / 1024
    return [
        Figure(
            name=f"Celery worker peak RSS rise over a 100 MiB-output plan ({stack.config})",
            value=f"+{rise:.1f} MiB",
            baseline=f"peak {before / 1024:.1f} MiB after ordinary plans",
            target="≤ 4 MiB rise",
            met=rise <= 4,
            note=(
                f"VmHWM of the prefork pool process running Terraform (Terraform itself not "
                f"counted); {FLOOD_LINES:,} lines printed, log stored "
                f"{stored / 1024 / 1024:.1f} MiB (RUN_LOG_MAX_BYTES: head and tail); "
                + (
                    "SQLite runs inside the worker: writing the log as one value needs it "
                    "there (joined by Python: about 3 times its size)"
                    if stack.config == "embedded"
                    else "PostgreSQL joins the chunks itself"
                )
            ),
        )
    ]


def export_cost(ctx: Context) -> list[Figure]:
    """The export figure (see the module docstring), medians of alternated samples."""
    from deployments.terraform.source import InfraRepo, create_repository

    work = ctx.work / "terraform-export"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = work / "repo"
    sha = create_repository(ROOT / "sample_stack", repo)
    infra = InfraRepo(location=str(repo), cache_dir=work)
    samples = 10 if ctx.quick else 25
    cold: list[float] = []
    warm: list[float] = []
    copied = 0
    for n in range(samples):
        cache = work / f"cache-{n}"
        started = time.perf_counter()
        infra.export_cached(sha, "terraform", work / f"cold-{n}", cache)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        infra.export_cached(sha, "terraform", work / f"warm-{n}", cache)
        warm.append(time.perf_counter() - started)
        files = [p for p in (work / f"warm-{n}").rglob("*") if p.is_file()]
        copied = len(files)
        size = sum(p.stat().st_size for p in files)
        for path in (cache, work / f"cold-{n}", work / f"warm-{n}"):
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return [
        Figure(
            name="Export of a commit for a run, from the cache (sample stack)",
            value=ms(median(warm)),
            baseline=f"{ms(median(cold))} first export",
            ratio=round(median(warm) / median(cold), 2),
            note=f"medians of {samples}, in-process; {copied} files, "
            f"{size / 1024:.0f} KiB copied and checked per run",
        )
    ]


ALL_FIGURES = ("export", "sandbox", "plan", "completed", "deploy", "log", "parallel", "memory")
# Figures to measure (all by default); `--figures deploy,log` while working on one.
FIGURES: tuple[str, ...] = ALL_FIGURES


class _Progress(list[Figure]):
    """The figures measured so far, each also printed to stderr as it comes."""

    def __iadd__(self, more: Any) -> _Progress:
        for figure in more:
            self.append(figure)
        return self

    def append(self, figure: Figure) -> None:
        print(f"  … {line(figure)}", file=sys.stderr, flush=True)
        super().append(figure)


def measure(ctx: Context, config: str) -> list[Figure]:
    samples = 5 if ctx.quick else 7
    latency_samples = 20 if ctx.quick else 30
    figures = _Progress()
    with _stack(ctx, config) as stack:
        stack.settings_cache = {
            "TERRAFORM_HOME": stack.settings_value("settings.TERRAFORM_HOME"),
            "MIRROR": stack.settings_value("settings.TERRAFORM_PROVIDER_MIRROR"),
        }
        # make run's worker: concurrency 2, the real binary.
        stack.start_worker(concurrency=2, wrapped=False)
        completed: list[float] = []
        if "completed" in FIGURES:
            ticket_to_completed(stack, 1)  # warm
            completed = ticket_to_completed(stack, 2 if ctx.quick else 3)
        stack.dev_auto_deploy(False)
        ticket_id = stack.ticket_new("plan ratio")
        stack.wait_ticket(ticket_id, "approved")
        stack.wait_run(stack.replan(ticket_id))  # warm: plugin cache, caches
        stack.wait_ticket(ticket_id, "approved")
        if "sandbox" in FIGURES:
            figures += sandbox_cost(stack, samples + 4)
        if "plan" in FIGURES or "completed" in FIGURES:
            ratio_figures = plan_ratio(stack, ticket_id, samples if "plan" in FIGURES else 1)
            if "plan" in FIGURES:
                figures += ratio_figures
            if completed:
                raw_median = float(ratio_figures[0].baseline.split()[0])
                figures.append(completed_figure(stack, completed, raw_median))
        if "deploy" in FIGURES or "log" in FIGURES:
            stack.start_worker(concurrency=2, wrapped=True)
            stack.wait_run(stack.replan(ticket_id))
            stack.wait_ticket(ticket_id, "approved")
            if "deploy" in FIGURES:
                figures += deploy_latency(stack, latency_samples)
            if "log" in FIGURES:
                figures += log_latency(stack, ticket_id)
        if config == "embedded" and "parallel" in FIGURES:
            others = [
                stack.ticket_new(f"parallel {n}", environment)
                for n, environment in enumerate(("staging", "dev", "staging"))
            ]
            for t in others:
                stack.wait_settled(t)
            figures += parallel_plans(stack, [ticket_id, *others])
        if "memory" in FIGURES:
            figures += worker_memory(stack, ticket_id)
    return figures


def run(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    if "export" in FIGURES:
        figures += export_cost(ctx)
    if not set(FIGURES) - {"export"}:
        return figures  # nothing needs a running portal
    for config in ctx.configurations:
        try:
            figures += measure(ctx, config)
        except Unavailable as exc:
            figures.append(
                Figure(name=f"Terraform path ({config})", value="not measured", note=str(exc))
            )
        except Exception as exc:  # one configuration failing does not lose the others
            figures.append(
                Figure(
                    name=f"Terraform path ({config})",
                    value="failed",
                    met=False,
                    note=f"{type(exc).__name__}: {str(exc)[:2000]}",
                )
            )
    return figures


def line(figure: Figure) -> str:
    ratio = f" ratio {figure.ratio}" if figure.ratio is not None else ""
    met = {True: "MET", False: "NOT MET", None: ""}[figure.met]
    return (
        f"{figure.name}: {figure.value} (baseline {figure.baseline}){ratio} "
        f"target {figure.target} {met} — {figure.note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("embedded", "server"))
    parser.add_argument("--figures", default=",".join(ALL_FIGURES), help="comma-separated")
    options = parser.parse_args()
    global FIGURES
    FIGURES = tuple(options.figures.split(","))
    ctx = Context(quick=options.quick)
    if options.only:
        ctx.configurations = (options.only,)
    print(machine())
    started = time.perf_counter()
    for figure in run(ctx):
        print(line(figure))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
