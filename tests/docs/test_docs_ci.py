"""docs/ci.md works as written: every ```sh block, in order, in one bash session, against a
live server with a real worker (the `sh setup` block is what the reader runs on the portal
host; its variables are provided here)."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments.models import CheckResult, SpeculativePlan, Ticket, WebhookDelivery
from tests.helpers.paths import ROOT

pytestmark = [pytest.mark.worker, pytest.mark.terraform]

DOC = ROOT / "docs" / "ci.md"
_BLOCK = re.compile(r"^```(sh[^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    """(info string, code) of every fenced sh block."""
    return [(m.group(1).strip(), m.group(2)) for m in _BLOCK.finditer(text)]


def token(user: User) -> str:
    out = io.StringIO()
    call_command("create_api_token", user.username, stdout=out)
    return out.getvalue().strip()


def test_the_doc_has_the_walkthrough() -> None:
    found = blocks(DOC.read_text())
    runnable = [code for info, code in found if info == "sh"]
    assert [info for info, _ in found].count("sh setup") == 1
    joined = "\n".join(runnable)
    for path in (
        '/api/v1/plans/"',
        '/api/v1/tickets/"',
        "/checks/",
        "/approve/",
        "/deploy/",
        "/webhooks/github/",
    ):
        assert path in joined, path
    assert all("curl" in code for code in runnable)


def test_every_jq_shows_why_a_request_was_refused() -> None:
    """On a 4xx, curl --fail-with-body prints the portal's JSON error: each jq of the
    walkthrough shows its detail (or stops with it) instead of printing nulls."""
    runnable = "\n".join(code for info, code in blocks(DOC.read_text()) if info == "sh")
    filters = re.findall(r"\| jq(?: -[rc])? '([^']*)'", runnable)
    assert len(filters) == runnable.count("| jq") >= 9
    refusal = '{"detail": "ticket 7 is not approved", "plan_sha256": ["required"]}'
    for jq_filter in filters:
        result = subprocess.run(
            ["jq", jq_filter], input=refusal, capture_output=True, text=True, check=False
        )
        assert "ticket 7 is not approved" in result.stdout + result.stderr, jq_filter
        if not jq_filter.startswith("{detail,"):  # the webhook's answer has a detail too
            assert "null" not in result.stdout, jq_filter


def test_every_documented_curl_works(
    celery_worker_process: Any,
    live_server: Any,
    settings: Any,
    author: User,
    lead: User,
    head_sha: str,
    tmp_path: Path,
) -> None:
    settings.GITHUB_WEBHOOK_SECRET = "docs-test-secret"
    script = ["set -euo pipefail"]
    for number, (info, code) in enumerate(blocks(DOC.read_text()), 1):
        if info != "sh":
            continue
        script += [f"echo '### block {number}' >&2", code]
    script.append('echo "TICKET=$TICKET"')
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PORTAL_URL": live_server.url,
        "TOKEN": token(author),
        "LEAD_TOKEN": token(lead),
        "GITHUB_WEBHOOK_SECRET": "docs-test-secret",
        "PR_SHA": head_sha,
    }
    assert live_server.url.startswith("http://localhost") or "127.0.0.1" in live_server.url
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,  # files the walkthrough writes (checkov.txt) land here
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
    ticket_id = int(re.findall(r"^TICKET=(\d+)$", result.stdout, re.M)[-1])
    ticket = Ticket.objects.get(pk=ticket_id)
    # The pull request got a plan only: no ticket of its own, nothing that could apply.
    plan = SpeculativePlan.objects.get()
    assert (plan.environment.name, plan.commit_sha, plan.status) == ("dev", head_sha, "succeeded")
    assert plan.pull_request_url == "https://github.com/acme/infra/pull/7"
    assert f'"add": {plan.summary["add"]}' in result.stdout
    assert list(Ticket.objects.values_list("pk", flat=True)) == [ticket.pk]
    # What the walkthrough says happened, happened.
    assert ticket.environment.name == "staging"
    assert ticket.author == author
    assert ticket.status == "monitoring", ticket.status_reason
    assert ticket.approvals.get().approver == lead
    names = CheckResult.objects.filter(ticket=ticket).values_list("name", flat=True)
    assert sorted(set(names)) == ["fmt", "plan", "security_scan", "validate"]
    scan = CheckResult.objects.filter(ticket=ticket, name="security_scan").latest("id")
    assert scan.log.startswith("Passed checks: 42")  # the file sent with -F log_file=@
    assert WebhookDelivery.objects.get().status == "ignored"
    assert '"status": "monitoring"' in result.stdout
    # The deploy answer names the approved plan run it applies; the plan's summary is shown.
    apply_run = ticket.runs.get(kind="apply")
    assert apply_run.plan_id == ticket.current_plan_id
    assert f'"plan": {apply_run.plan_id}' in result.stdout
    summary = ticket.current_plan.summary
    assert f'"add": {summary["add"]}' in result.stdout
    assert "null" not in result.stdout, result.stdout
