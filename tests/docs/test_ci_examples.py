"""examples/github-actions: the workflows parse, have the jobs and steps the docs promise,
their shell is valid bash, the pull-request workflow's fmt/validate scripts pass on the
sample stack (local or s3 backend) and its plan job gets a speculative plan (never a ticket)
from a live portal, and deploy.yml's steps deploy an approved ticket on a live portal."""

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

from deployments.models import ApiKeyScope
from tests.helpers.api import api_for
from tests.helpers.keys import new_key
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

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


def test_the_pull_request_workflow_checks_and_asks_for_a_plan_only() -> None:
    doc = load(EXAMPLES / "pull-request.yml")
    assert doc["on"] == {"pull_request": {"branches": ["main"]}}
    text = (EXAMPLES / "pull-request.yml").read_text()
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert "fmt -check" in runs
    assert "validate" in runs
    assert "checkov -d" in runs
    assert "pip install 'checkov==" in runs
    # The plan is the portal's speculative plan: nothing a pull request asks for can apply.
    assert 'POST "$PORTAL_URL/api/v1/plans/"' in runs
    assert "commit_sha: $sha" in runs and "pull_request_url: $pr" in runs
    assert "/api/v1/tickets" not in text and "/deploy/" not in text
    assert not re.search(r"terraform .*\bplan\b", runs)  # the runner plans nothing itself
    assert doc["env"]["PLAN_ENVIRONMENT"] == "dev"
    assert set(doc["jobs"]) == {"checks", "plan"}


def test_deploy_workflow_is_a_manual_trigger_calling_deploy() -> None:
    doc = load(EXAMPLES / "deploy.yml")
    dispatch = doc["on"]["workflow_dispatch"]
    assert dispatch["inputs"]["environment"]["options"] == ["staging", "prod"]
    assert dispatch["inputs"]["ticket"]["required"] is True
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert 'POST "$PORTAL_URL/api/v1/tickets/$TICKET/deploy/"' in runs
    assert doc["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"


@pytest.mark.terraform
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_the_workflows_terraform_steps_pass_on_the_sample_stack(
    tmp_path: Path, settings: Any, backend: str
) -> None:
    """The pull-request workflow's own fmt, init and validate scripts, run by bash as GitHub
    runs them, on the sample stack; also with an s3 backend like the team's AWS stack's (init
    without a backend: CI never touches the state)."""
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
    wanted = ["terraform fmt", "terraform init", "terraform validate"]
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
    assert "Success! The configuration is valid." in (runner_temp / "validate.log").read_text()
    assert not (repo / "terraform" / "terraform.tfstate.d").exists()


def _run_job(
    path: Path, job: str, env: dict[str, str], context: dict[str, str] | None = None
) -> list[Any]:
    """Run a workflow job's steps by bash, as GitHub does (bash -eo pipefail), in order,
    until one fails; their results. A step's `env` may use ``${{ <expression> }}`` from
    ``context`` and ``steps.<id>.outputs.<name>`` written to $GITHUB_OUTPUT by earlier steps;
    the workflow's own `env` applies under the test's."""
    results = []
    known = dict(context or {})
    doc = load(path)
    base = {k: str(v) for k, v in doc.get("env", {}).items() if "${{" not in str(v)}
    for step in doc["jobs"][job]["steps"]:
        step_env = {**base, **env}
        for name, value in (step.get("env") or {}).items():
            step_env[name] = _EXPR.sub(lambda m: known[m.group(0)[3:-2].strip()], str(value))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        results.append(result)
        outputs = Path(env.get("GITHUB_OUTPUT", "/nonexistent"))
        if step.get("id") and outputs.exists():
            for line in outputs.read_text().splitlines():
                key, _, value = line.partition("=")
                known[f"steps.{step['id']}.outputs.{key}"] = value
        if result.returncode:
            break
    return results


def _branch_commit(repo: Path, text: str) -> str:
    """A pull request's head: a commit on a branch, main left where it was."""
    from deployments.terraform.source import commit_all

    git_env = {**os.environ, "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "checkout", "-q", "-B", "pr"], cwd=repo, env=git_env, check=True)
    (repo / "terraform" / "pr.tf").write_text(text)
    sha = commit_all(repo, "a pull request")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, env=git_env, check=True)
    return sha


@pytest.mark.worker
@pytest.mark.terraform
def test_the_plan_job_against_a_live_portal(
    celery_worker_process: Any, live_server: Any, author: User, infra_repo: Path, tmp_path: Path
) -> None:
    """pull-request.yml's plan job, its own steps run by bash against a live portal and
    worker: it asks for the plan of the PR's head, waits, writes the summary, and fails when
    the plan failed or the portal refused; no ticket is ever filed."""
    from deployments.models import SpeculativePlan, Ticket

    key = new_key(author, scope=ApiKeyScope.CI)
    workflow = EXAMPLES / "pull-request.yml"

    def run(sha: str, number: str, environment: str = "dev") -> tuple[list[Any], str]:
        summary = tmp_path / f"summary-{number}.md"
        runner_temp = tmp_path / f"runner-{number}"
        runner_temp.mkdir()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "PORTAL_URL": live_server.url,
            "PORTAL_TOKEN": key,
            "PLAN_ENVIRONMENT": environment,
            "POLL_SECONDS": "1",
            "GITHUB_OUTPUT": str(tmp_path / f"output-{number}"),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_RUN_ATTEMPT": "1",
            "RUNNER_TEMP": str(runner_temp),
        }
        context = {
            "github.event.pull_request.head.sha": sha,
            "github.event.pull_request.html_url": f"https://github.com/acme/infra/pull/{number}",
            "github.event.pull_request.number": number,
        }
        results = _run_job(workflow, "plan", env, context)
        return results, summary.read_text() if summary.exists() else ""

    good = _branch_commit(infra_repo, 'resource "null_resource" "pr" {}\n')
    results, summary = run(good, "7")
    assert [r.returncode for r in results] == [0, 0], results[-1].stdout + results[-1].stderr
    assert "### Speculative plan (dev): succeeded" in summary
    assert f"Commit `{good}`, exit code 0." in summary
    assert "**+25 to add, ~0 to change, -0 to destroy**" in summary
    assert "- `create` null_resource.pr" in summary
    assert "Plan: 25 to add, 0 to change, 0 to destroy." in summary  # the log's tail
    plan = SpeculativePlan.objects.get(commit_sha=good)
    assert plan.pull_request_url == "https://github.com/acme/infra/pull/7"
    assert plan.status == "succeeded" and plan.environment.name == "dev"
    assert f"Plan requested: {live_server.url}/api/v1/plans/{plan.pk}/" in results[0].stdout

    broken = _branch_commit(infra_repo, 'resource "null_resource" {\n')
    results, summary = run(broken, "8")
    assert [r.returncode for r in results] == [0, 1]
    assert "### Speculative plan (dev): failed" in summary
    assert "Error: terraform init failed" in summary
    assert "the plan failed: terraform init failed" in results[-1].stdout

    # Refused by the portal (no such environment): the job fails showing why.
    results, _ = run(good, "9", environment="qa")
    assert len(results) == 1 and results[0].returncode != 0
    assert "unknown environment 'qa'" in json.loads(results[0].stdout)["detail"]
    assert not Ticket.objects.exists()


@pytest.mark.worker
@pytest.mark.terraform
def test_the_deploy_workflow_against_a_live_portal(
    celery_worker_process: Any, live_server: Any, author: User, lead: User, tmp_path: Path
) -> None:
    """deploy.yml's own steps against a live portal and worker: refused for a ticket of
    another environment and for one not approved yet (the job fails, nothing applied), then
    it deploys the approved staging ticket and waits until it is monitoring."""
    from deployments.models import Ticket
    from tests.helpers.tickets import approve

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
