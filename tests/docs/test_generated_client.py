"""A client generated from the live OpenAPI document by openapi-python-client runs the CI
flow of docs/ci.md unmodified against a live portal with a real worker and the real
Terraform binary: dev ticket, a pull request's speculative plan, CI checks (JSON and a log
file), staging approval naming the plan's SHA-256, deploy, QA's evidence (multipart), a prod
ticket with its questionnaire, and refusals read as typed errors with their reason."""

from __future__ import annotations

import importlib
import io
import json
import pathlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments.models import CheckResult, Evidence, Ticket
from tests.helpers.waiting import wait_for

PACKAGE = "portal_client"


def _token(user: User) -> str:
    out = io.StringIO()
    call_command("create_api_token", user.username, stdout=out)
    return out.getvalue().strip()


def _generate(schema_url: str, token: str, where: Path) -> None:
    """What a CI author does: fetch the document, run the generator on it, nothing else."""
    request = urllib.request.Request(schema_url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as answer:  # loopback live server
        (where / "schema.json").write_bytes(answer.read())
    # No post hooks: the generator would otherwise run `ruff` from PATH to tidy the code.
    (where / "generator.yml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(where / "schema.json"),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--config",
            str(where / "generator.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # The generator reports what it could not read ("Unable to parse", "will be omitted")
    # as warnings and still exits 0: any such line is a defect of our document.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unable to" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "omitted" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.fixture
def generated(live_server: Any, author: User, tmp_path: Path) -> Iterator[ModuleType]:
    _generate(f"{live_server.url}/api/v1/schema/?format=json", _token(author), tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _modules(package: ModuleType) -> list[str]:
    root = pathlib.Path(package.__file__ or "").parent
    return sorted(
        ".".join((PACKAGE, *path.relative_to(root).with_suffix("").parts))
        for path in root.rglob("*.py")
        if path.name != "__init__.py"
    )


@pytest.mark.django_db(transaction=True)
def test_every_generated_module_imports(
    generated: ModuleType, live_server: Any, author: User
) -> None:
    """approve, reject, follow-up complete and evidence sign-off did not, while every POST
    declared a multipart body beside JSON."""
    names = _modules(generated)
    assert f"{PACKAGE}.api.tickets.tickets_approve_create" in names
    for name in names:
        importlib.import_module(name)
    endpoints = [n for n in names if ".api." in n]
    assert len(endpoints) >= 30
    # The environments' policy, read as typed models (a bare object before).
    from portal_client.api.environments import environments_list  # type: ignore[import-not-found]

    client = generated.AuthenticatedClient(base_url=live_server.url, token=_token(author))
    environments = {env.name: env for env in environments_list.sync(client=client)}
    prod = environments["prod"]
    assert prod.change_window.timezone == "America/New_York"
    assert prod.change_window.days == [2, 4] and prod.change_window.start == "02:00"
    assert prod.approval_rule.all_of == ["tech_lead", "devops_lead"]
    assert environments["staging"].approval_rule.count == 1
    assert environments["dev"].change_window is None


@pytest.mark.worker
@pytest.mark.terraform
def test_the_ci_flow_runs_through_a_generated_client(
    celery_worker_process: Any,
    generated: ModuleType,
    live_server: Any,
    author: User,
    lead: User,
    qa: User,
    tech_lead: User,
) -> None:
    c = generated
    from portal_client.api.plans import (  # type: ignore[import-not-found]
        plans_create,
        plans_retrieve,
    )
    from portal_client.api.tickets import (  # type: ignore[import-not-found]
        tickets_approve_create,
        tickets_checks_create,
        tickets_create,
        tickets_deploy_create,
        tickets_evidence_create,
        tickets_evidence_signoff_create,
        tickets_retrieve,
    )
    from portal_client.models import (  # type: ignore[import-not-found]
        ApproveRequest,
        CheckCreateRequest,
        CheckStatusEnum,
        CheckUploadRequest,
        Error,
        EvidenceKindEnum,
        EvidenceSignOffRequest,
        EvidenceUploadRequest,
        RiskAssessmentRequest,
        RiskLevelEnum,
        RollbackPlanRequest,
        SpeculativePlan,
        SpeculativePlanCreateRequest,
        TicketCreateRequest,
        TicketDetail,
    )
    from portal_client.types import File  # type: ignore[import-not-found]

    # AuthenticatedClient sends `Authorization: Bearer <key>`, its default.
    def client(user: User) -> Any:
        return c.AuthenticatedClient(base_url=live_server.url, token=_token(user), timeout=60)

    dev_team, leads, qa_team, tech = client(author), client(lead), client(qa), client(tech_lead)

    def ticket(who: Any, pk: int) -> Any:
        found = tickets_retrieve.sync(pk, client=who)
        assert isinstance(found, TicketDetail), found
        return found

    def settled(who: Any, pk: int, *passing: str) -> Any:
        """Poll as docs/ci.md does, until the status is none of the passing ones."""
        return wait_for(
            lambda: (t := ticket(who, pk)).status.value not in passing and t,
            timeout=300,
            what=f"ticket {pk} to leave {passing}",
        )

    # 1. A dev ticket plans, applies and completes by itself.
    dev = tickets_create.sync(
        client=dev_team, body=TicketCreateRequest(title="Dev change", environment="dev")
    )
    assert isinstance(dev, TicketDetail), dev
    dev_done = settled(dev_team, dev.id, "planning", "approved", "applying", "monitoring")
    assert dev_done.status.value == "completed", dev_done.status_reason
    assert dev_done.approval_status.branch_note == ""  # its commit is on main

    # A pull request's check: a plan only, read through the same typed summary.
    asked = plans_create.sync(
        client=dev_team,
        body=SpeculativePlanCreateRequest(
            environment="staging",
            commit_sha=dev_done.commit_sha,
            pull_request_url="https://github.com/acme/infra/pull/7",
        ),
    )
    assert isinstance(asked, SpeculativePlan), asked
    planned = wait_for(
        lambda: (
            (p := plans_retrieve.sync(asked.id, client=dev_team)).status.value
            not in ("queued", "running")
            and p
        ),
        timeout=300,
        what="the speculative plan",
    )
    assert planned.status.value == "succeeded", planned.error
    assert planned.summary.add > 0 and planned.summary.resources[0].address

    # 2. A staging ticket: its plan, read through the typed summary.
    filed = tickets_create.sync(
        client=dev_team,
        body=TicketCreateRequest(
            title="Scale the app tier",
            environment="staging",
            description="Two more app servers for the launch.",
        ),
    )
    assert isinstance(filed, TicketDetail), filed
    staging = settled(dev_team, filed.id, "planning")
    assert staging.status.value == "awaiting_approval", staging.status_reason
    assert staging.plan_summary.add > 0 and staging.plan_summary.destroy == 0
    assert staging.plan_summary.resources[0].address

    # 3. CI checks: JSON, and a log file as multipart.
    for name in ("fmt", "validate", "plan"):
        reported = tickets_checks_create.sync(
            staging.id,
            client=dev_team,
            body=CheckCreateRequest(
                name=name,
                status=CheckStatusEnum.PASSED,
                summary=f"{name} ok",
                url="https://ci.example.com/runs/1",
            ),
        )
        assert reported.name == name, reported
    scan = tickets_checks_create.sync(
        staging.id,
        client=dev_team,
        body=CheckUploadRequest(
            name="security_scan",
            status=CheckStatusEnum.PASSED,
            summary="checkov: 0 failed",
            log_file=File(
                payload=io.BytesIO(b"Passed checks: 42, Failed checks: 0\n"),
                file_name="checkov.txt",
            ),
        ),
    )
    assert scan.log.startswith("Passed checks: 42"), scan

    # 4. The lead approves the plan they reviewed, by its SHA-256.
    reviewed = ticket(leads, staging.id).current_plan.plan_sha256
    approved = tickets_approve_create.sync(
        staging.id,
        client=leads,
        body=ApproveRequest(plan_sha256=reviewed, comment="Reviewed: two app servers added."),
    )
    assert isinstance(approved, TicketDetail), approved
    assert approved.status.value == "approved"
    assert approved.approval_status.met is True and approved.approval_status.missing == []
    assert [a.approver for a in approved.approvals] == [lead.username]

    # 5. Deploy: 202 with the apply run, then monitoring.
    run = tickets_deploy_create.sync(staging.id, client=dev_team)
    assert run.kind.value == "apply" and run.plan == approved.current_plan.id, run
    deployed = settled(dev_team, staging.id, "approved", "applying")
    assert deployed.status.value == "monitoring", deployed.status_reason

    # 6. A prod ticket without its questionnaire is refused: a typed 400 naming the fields.
    bare = tickets_create.sync(
        client=dev_team, body=TicketCreateRequest(title="Scale prod", environment="prod")
    )
    assert isinstance(bare, Error), bare
    assert "risk_assessment" in bare.detail and "rollback_plan" in bare.detail
    # ... and with it, filed: nested objects arrive as sent (JSON, not a form).
    prod = tickets_create.sync(
        client=dev_team,
        body=TicketCreateRequest(
            title="Scale prod",
            environment="prod",
            description="Two more app servers for the launch.",
            commit_sha=staging.commit_sha,
            risk_assessment=RiskAssessmentRequest(
                impact=RiskLevelEnum.LOW,
                likelihood=RiskLevelEnum.LOW,
                summary="additive change; nothing existing is modified",
                tested_in_staging=True,
            ),
            rollback_plan=RollbackPlanRequest(steps="re-apply the previous commit"),
        ),
    )
    assert isinstance(prod, TicketDetail), prod
    assert prod.risk_assessment.impact.value == "low"
    assert prod.rollback_plan.steps == "re-apply the previous commit"
    prod = settled(dev_team, prod.id, "planning")
    assert prod.status.value == "awaiting_approval", prod.status_reason

    # 7. A refusal read as a typed error: the 409's detail says what is missing.
    sha = ticket(tech, prod.id).current_plan.plan_sha256
    refused = tickets_approve_create.sync_detailed(
        prod.id, client=tech, body=ApproveRequest(plan_sha256=sha)
    )
    assert refused.status_code == 409
    assert isinstance(refused.parsed, Error)
    assert "validated in staging first" in refused.parsed.detail

    # 8. QA validates staging: evidence uploaded as multipart, one verdict given apart.
    smoke = tickets_evidence_create.sync(
        staging.id,
        client=qa_team,
        body=EvidenceUploadRequest(
            file=File(payload=io.BytesIO(b"all smoke tests passed\n"), file_name="smoke.txt"),
            kind=EvidenceKindEnum.SMOKE_TESTS,
            passed=True,
        ),
    )
    assert smoke.passed is True, smoke
    report = tickets_evidence_create.sync(
        staging.id,
        client=qa_team,
        body=EvidenceUploadRequest(
            file=File(payload=io.BytesIO(b"QA report: ok\n"), file_name="qa.txt"),
            kind=EvidenceKindEnum.QA_REPORT,
        ),
    )
    assert report.passed is None, report  # left out: no verdict yet (not false)
    signed = tickets_evidence_signoff_create.sync(
        staging.id,
        report.id,
        client=qa_team,
        body=EvidenceSignOffRequest(passed=True, note="looks right"),
    )
    assert signed.passed is True, signed
    assert settled(dev_team, staging.id, "monitoring").status.value == "completed"
    promoted = tickets_approve_create.sync(
        prod.id, client=tech, body=ApproveRequest(plan_sha256=sha)
    )
    assert isinstance(promoted, TicketDetail), promoted
    assert promoted.approval_status.met is False
    assert [a.approver for a in promoted.approvals] == [tech_lead.username]

    # What the client did, happened.
    assert Ticket.objects.get(pk=staging.id).approvals.get().approver == lead
    names = set(CheckResult.objects.filter(ticket_id=staging.id).values_list("name", flat=True))
    assert names == {"fmt", "validate", "plan", "security_scan"}
    assert Evidence.objects.filter(ticket_id=staging.id, passed=True).count() == 2
    assert json.loads(json.dumps(Ticket.objects.get(pk=prod.id).risk_assessment))["impact"] == (
        "low"
    )
