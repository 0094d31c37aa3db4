"""Benchmark: a dev ticket end to end versus raw Terraform on the same stack, one run.

    make bench            # or: .venv/bin/python scripts/bench.py [--tickets 3]

Measures, on a throwaway DATA_DIR with the embedded broker and a real Celery worker:
  raw      `terraform init` + `workspace new` + `plan -out` on the sample stack (median of 3)
  ticket   filing a dev ticket until it is `completed` (plan, apply, post-apply check)
and prints the figures and their ratios, so they compare within one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def raw_plan(work: Path, binary: str, mirror: Path) -> float:
    stack = work / "raw" / "terraform"
    shutil.rmtree(work / "raw", ignore_errors=True)
    shutil.copytree(ROOT / "sample_stack" / "terraform", stack)
    rc = work / "raw" / "cli.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{ path = "{mirror}" }}\n}}\n')
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(rc),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
    }
    start = time.perf_counter()
    for args in (
        [
            "init",
            "-input=false",
            "-no-color",
            f"-backend-config=workspace_dir={work / 'raw' / 'state'}",
        ],
        ["workspace", "new", "dev"],
        [
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=environments/dev/terraform.tfvars",
            "-out=p",
        ],
    ):
        subprocess.run([binary, *args], cwd=stack, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=3, help="dev tickets to time")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccp-bench-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")
    }
    env.update({"DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "changecontrol.settings"})
    os.environ.update(env)
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    sys.path.insert(0, str(ROOT))
    manage = [str(BIN / "python"), str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, env=env)
    subprocess.run([*manage, "init_infra_repo"], check=True, env=env, capture_output=True)

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User

    from deployments import services
    from deployments.models import Ticket
    from deployments.terraform import find_binary, version

    binary = find_binary(settings.TERRAFORM_BIN)
    raws = [raw_plan(work, binary, settings.TERRAFORM_PROVIDER_MIRROR) for _ in range(3)]
    raw = statistics.median(raws)

    user, _ = User.objects.get_or_create(username="bench")
    user.groups.set([Group.objects.get(name="developer")])
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "changecontrol",
            "worker",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # worker start-up is not part of a ticket's time
        totals, terraform_times = [], []
        for n in range(options.tickets):
            start = time.perf_counter()
            ticket = services.ticket_create(
                actor=user, data=services.TicketInput(title=f"bench {n}", environment="dev")
            )
            while True:
                status = Ticket.objects.values_list("status", flat=True).get(pk=ticket.pk)
                if status in ("completed", "plan_failed", "apply_failed"):
                    break
                time.sleep(0.05)
            totals.append(time.perf_counter() - start)
            if status != "completed":
                raise SystemExit(f"ticket {ticket.pk} ended {status}")
            terraform_times.append(
                sum((r.finished_at - r.started_at).total_seconds() for r in ticket.runs.all())
            )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    total = statistics.median(totals)
    in_runs = statistics.median(terraform_times)
    print(
        json.dumps(
            {
                "terraform": version(binary),
                "raw_init_plan_s": round(raw, 3),
                "dev_ticket_to_completed_s": round(total, 3),
                "time_inside_runs_s": round(in_runs, 3),
                "ratio_ticket_to_raw_plan": round(total / raw, 2),
                "ratio_runs_to_raw_plan": round(in_runs / raw, 2),
                "queueing_overhead_share": round(1 - in_runs / total, 2),
                "tickets": options.tickets,
                "broker": "filesystem (embedded)",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
