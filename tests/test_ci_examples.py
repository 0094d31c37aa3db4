"""examples/github-actions: the workflows parse, have the jobs and steps the docs promise,
their shell is valid bash, the check reporter they define posts to a live portal (and shows
the portal's reason when refused), their fmt/validate/plan scripts pass on the sample stack
(local or s3 backend), and deploy.yml's steps deploy an approved ticket on a live portal."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments.models import CheckResult

from .conftest import ROOT, api_for, wait_for
from .factories import TicketFactory

EXAMPLES = ROOT / "examples" / "github-actions"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml"))
SECRETS = {"PORTAL_URL", "PORTAL_TOKEN"}
_EXPR = re.compile(r"\$\{\{.*?\}\}")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    # YAML 1.1 reads the key `on` as true.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_there_are_both_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["deploy.yml", "pull-request.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_structure(path: Path) -> None:
    doc = load(path)
    assert doc["name"] and doc["on"]
    for name, job in doc["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        assert job["steps"], name
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), step
            assert set(step) <= {
                "name",
                "id",
                "if",
                "run",
                "uses",
                "with",
                "env",
                "continue-on-error",
                "shell",
                "working-directory",
            }, step
        for need in (
            [job.get("needs")] if isinstance(job.get("needs"), str) else job.get("needs", [])
        ):
            assert need in doc["jobs"], need
    used = set(re.findall(r"secrets\.([A-Z_]+)", path.read_text()))
    assert used == SECRETS, used
    for secret in SECRETS:
        assert secret in path.read_text().split("name:")[0], f"{secret} not documented on top"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_script_is_valid_bash(path: Path) -> None:
    for step in steps(load(path)):
        if "run" not in step:
            continue
        script = _EXPR.sub("placeholder", step["run"])
        result = subprocess.run(
            ["bash", "-n"], input=script, text=True, capture_output=True, check=False
        )
        assert result.returncode == 0, (step.get("name"), result.stderr)


def test_pull_request_workflow_runs_and_reports_the_four_checks() -> None:
    doc = load(EXAMPLES / "pull-request.yml")
    assert doc["on"] == {"pull_request": {"branches": ["main"]}}
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert "fmt -check" in runs
    assert "validate" in runs
    assert "checkov -d" in runs
    assert "pip install 'checkov==" in runs
    assert re.search(r"terraform .*plan ", runs)
    for check in ("fmt", "validate", "security_scan", "plan"):
        assert re.search(rf"^\s*report {check} ", runs, re.M), check
    assert "/api/v1/tickets/$TICKET/checks/" in runs
    assert '"environment": "staging"' not in runs  # built with jq, not by string pasting
    assert "commit_sha: $sha" in runs and "pull_request_url: $pr" in runs


def test_deploy_workflow_is_a_manual_trigger_calling_deploy() -> None:
    doc = load(EXAMPLES / "deploy.yml")
    dispatch = doc["on"]["workflow_dispatch"]
    assert dispatch["inputs"]["environment"]["options"] == ["staging", "prod"]
    assert dispatch["inputs"]["ticket"]["required"] is True
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert 'POST "$PORTAL_URL/api/v1/tickets/$TICKET/deploy/"' in runs
    assert doc["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"


def _reporter() -> str:
    doc = load(EXAMPLES / "pull-request.yml")
    setup = next(s for s in steps(doc) if s.get("name") == "Define the reporter")
    match = re.search(r"<<'SH'\n(.*?)\n\s*SH\n", setup["run"], re.S)
    assert match
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_the_reporter_posts_to_a_live_portal(
    live_server: Any, author: User, tmp_path: Path
) -> None:
    """The workflow's own report function, run by bash with curl and jq against the portal."""
    ticket = TicketFactory(author=author)
    out = io.StringIO()
    call_command("create_api_token", author.username, stdout=out)
    log = tmp_path / "plan.log"
    log.write_text("Plan: 1 to add, 0 to change, 0 to destroy.\npassword = hunter2hunter2\n")
    script = (
        _reporter()
        + f'\nreport plan success "Plan: 1 to add" {log}\nreport fmt failure "diff" {log}\n'
    )
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        env={
            "PATH": os.environ["PATH"],
            "PORTAL_URL": live_server.url,
            "PORTAL_TOKEN": out.getvalue().strip(),
            "TICKET": str(ticket.pk),
            "RUN_URL": "https://github.com/acme/infra/actions/runs/1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stored = {c.name: c for c in CheckResult.objects.filter(ticket=ticket)}
    assert (stored["plan"].status, stored["fmt"].status) == ("passed", "failed")
    assert stored["plan"].summary == "Plan: 1 to add"
    assert stored["plan"].url == "https://github.com/acme/infra/actions/runs/1"
    assert "hunter2hunter2" not in stored["plan"].log
    # A refused report fails the step and prints the portal's reason.
    refused = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + _reporter() + f'\nreport fmt success "ok" {log}\n'],
        env={
            "PATH": os.environ["PATH"],
            "PORTAL_URL": live_server.url,
            "PORTAL_TOKEN": out.getvalue().strip(),
            "TICKET": str(ticket.pk + 1000),
            "RUN_URL": "https://github.com/acme/infra/actions/runs/1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "could not report fmt: {" in refused.stderr and '"detail"' in refused.stderr


@pytest.mark.terraform
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_the_workflows_terraform_steps_pass_on_the_sample_stack(
    tmp_path: Path, settings: Any, backend: str
) -> None:
    """The pull-request workflow's own fmt, init, validate and plan scripts, run by bash as
    GitHub runs them, on the sample stack; also with an s3 backend like the team's AWS
    stack's: the plan uses a throwaway local state and never the real backend."""
    from deployments.terraform.runner import cli_config_text, find_binary

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "sample_stack" / "terraform", repo / "terraform")
    versions = repo / "terraform" / "versions.tf"
    if backend == "s3":
        versions.write_text(versions.read_text().replace('backend "local" {}', 'backend "s3" {}'))
        assert 'backend "s3" {}' in versions.read_text()
    (tmp_path / "plugins").mkdir()
    cli = tmp_path / "cli.tfrc"
    cli.write_text(cli_config_text(settings.TERRAFORM_PROVIDER_MIRROR))
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    binary = Path(find_binary(settings.TERRAFORM_BIN))
    env = {
        "PATH": f"{binary.parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TF_DIR": "terraform",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(cli),
        "RUNNER_TEMP": str(runner_temp),
    }
    wanted = ["terraform fmt", "terraform init", "terraform validate", "terraform plan"]
    workflow_steps = steps(load(EXAMPLES / "pull-request.yml"))
    for prefix in wanted:
        step = next(s for s in workflow_steps if s.get("name", "").startswith(prefix))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (prefix, result.stdout[-2000:], result.stderr[-2000:])
    plan_log = (runner_temp / "plan.log").read_text()
    assert re.search(r"^Plan: \d+ to add, 0 to change, 0 to destroy\.$", plan_log, re.M)
    assert (runner_temp / "state" / "staging").is_dir()


def _run_job(path: Path, job: str, env: dict[str, str]) -> list[Any]:
    """Run a workflow job's steps by bash, as GitHub does (bash -eo pipefail), in order,
    until one fails; their results."""
    results = []
    for step in load(path)["jobs"][job]["steps"]:
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        results.append(result)
        if result.returncode:
            break
    return results


@pytest.mark.worker
@pytest.mark.terraform
def test_the_deploy_workflow_against_a_live_portal(
    celery_worker_process: Any, live_server: Any, author: User, lead: User, tmp_path: Path
) -> None:
    """deploy.yml's own steps against a live portal and worker: refused for a ticket of
    another environment and for one not approved yet (the job fails, nothing applied), then
    it deploys the approved staging ticket and waits until it is monitoring."""
    from deployments.models import Ticket

    from .test_approvals_api import approve

    filed = api_for(author).post(
        "/api/v1/tickets/", {"title": "deploy.yml", "environment": "staging"}, format="json"
    )
    assert filed.status_code == 201, filed.json()
    ticket = wait_for(
        lambda: (
            Ticket.objects.filter(pk=filed.json()["id"])
            .exclude(status__in=["draft", "planning"])
            .first()
        ),
        timeout=180,
        what="the plan",
    )
    assert ticket.status == "awaiting_approval", ticket.status_reason
    out = io.StringIO()
    call_command("create_api_token", author.username, stdout=out)
    summary = tmp_path / "summary.md"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PORTAL_URL": live_server.url,
        "PORTAL_TOKEN": out.getvalue().strip(),
        "TICKET": str(ticket.pk),
        "ENVIRONMENT": "prod",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    workflow = EXAMPLES / "deploy.yml"
    wrong_env = _run_job(workflow, "deploy", env)
    assert len(wrong_env) == 1 and wrong_env[0].returncode == 1
    assert f"ticket {ticket.pk} is a staging ticket, not prod" in wrong_env[0].stdout

    env["ENVIRONMENT"] = "staging"
    unapproved = _run_job(workflow, "deploy", env)
    assert [r.returncode for r in unapproved][:1] == [0] and unapproved[-1].returncode != 0
    assert len(unapproved) == 2
    refusal = json.loads(unapproved[-1].stdout)  # the portal's answer, not jq's nulls
    assert "approv" in refusal["detail"], refusal
    assert not ticket.runs.filter(kind="apply").exists()

    assert approve(lead, ticket).status_code == 200
    deployed = _run_job(workflow, "deploy", env)
    assert [r.returncode for r in deployed] == [0, 0, 0], deployed[-1].stderr
    assert '"approvals": [\n    "lena"\n  ]' in deployed[0].stdout
    assert f'"plan": {ticket.current_plan_id}' in deployed[1].stdout
    assert "status: monitoring" in deployed[2].stdout
    ticket.refresh_from_db()
    assert ticket.status == "monitoring"
    assert ticket.runs.filter(kind="apply", status="succeeded").count() == 1
    assert f"Deployed: {live_server.url}/tickets/{ticket.pk}/" in summary.read_text()
