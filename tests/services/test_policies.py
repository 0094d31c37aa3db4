"""Rego policies on hand-written AWS-shaped plan documents in prod, with the shipped
sample-stack policies run by regopy in the sandbox: a soft failure waits for a DevOps
Lead's override before anyone may approve, a hard one refuses approving, a portal policy
sets a floor a repository policy cannot go below, the apply's start re-checks."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction

from deployments import policy
from deployments import terraform as tf
from deployments.choices import RunKind, TicketStatus
from deployments.models import (
    AuditEvent,
    PolicyResult,
    PortalPolicy,
    TerraformRun,
    Ticket,
)
from deployments.services import policies as service
from deployments.services.runs.claim import recheck_start
from deployments.terraform.rego import read_policy_folder
from tests.helpers.api import api_for
from tests.helpers.policies import POLICIES, aws_plan, change, evaluated
from tests.helpers.tickets import IN_WINDOW, approve, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

TAGS = {"Project": "media", "Environment": "prod", "Owner": "platform", "CostCenter": "media-prod"}
DESTROY_DATABASE = aws_plan(
    change("aws_db_instance.main", "aws_db_instance", ["delete"], None),
    change(
        "aws_instance.web", "aws_instance", ["create"], {"instance_type": "m6i.large", "tags": TAGS}
    ),
)
PUBLIC_BUCKET = aws_plan(
    change(
        "aws_s3_bucket.media",
        "aws_s3_bucket",
        ["create"],
        {"bucket": "m", "acl": "public-read", "tags": TAGS},
    ),
)


def outcomes(ticket: Ticket) -> dict[str, tuple[str, str]]:
    return {
        r.policy: (r.level, r.outcome) for r in PolicyResult.objects.filter(run=ticket.current_plan)
    }


def test_a_destroyed_database_in_prod_waits_for_a_devops_leads_override(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    with time_machine.travel(IN_WINDOW, tick=False):
        ticket = evaluated(awaiting("prod", author), DESTROY_DATABASE)
        assert outcomes(ticket) == {
            "change_window": ("advisory", "pass"),
            "data_protection": ("soft", "fail"),
            "instance_sizes": ("hard", "pass"),
            "public_s3": ("hard", "pass"),
            "tags": ("hard", "pass"),
        }
        refused = approve(tech_lead, ticket)
        assert refused.status_code == 409
        body = refused.json()
        assert "needs a policy override" in body["detail"]
        assert "an override by DevOps Lead with a reason" in body["detail"]
        assert body["policies"] == [
            {
                "policy": "data_protection",
                "source": "repo",
                "level": "soft",
                "outcome": "fail",
                "messages": [
                    "aws_db_instance.main (aws_db_instance) would be destroyed: it holds data "
                    "the configuration cannot re-create"
                ],
                "override_role": "devops_lead",
            }
        ]
        # The refusal is audited with the ticket (the refused approval itself rolled back).
        refusal = AuditEvent.objects.get(action="access.refused", ticket=ticket)
        assert refusal.data["status"] == 409 and "data_protection" in refusal.data["reason"]
        overridden = api_for(devops_lead).post(
            f"/api/v1/tickets/{ticket.pk}/policy-overrides/",
            {
                "policy": "data_protection",
                "plan_sha256": ticket.current_plan.plan_sha256,
                "reason": "the database moved to Aurora last week",
            },
            format="json",
        )
        assert overridden.status_code == 201, overridden.json()
        assert approve(tech_lead, ticket).status_code == 200
        detail = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
        assert detail["policy_status"] == "warnings"


def test_a_public_bucket_refuses_approval_and_no_one_may_override_it(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    with time_machine.travel(IN_WINDOW, tick=False):
        ticket = evaluated(awaiting("prod", author), PUBLIC_BUCKET)
        assert outcomes(ticket)["public_s3"] == ("hard", "fail")
        refused = approve(devops_lead, ticket)
        assert refused.status_code == 409
        assert "aws_s3_bucket.media grants the public ACL public-read" in refused.json()["detail"]
        assert refused.json()["policies"][0]["policy"] == "public_s3"
        with pytest.raises(policy.PolicyError, match="cannot be overridden"):
            service.policy_override(
                ticket_id=ticket.pk,
                policy_name="public_s3",
                plan_sha256=ticket.current_plan.plan_sha256,
                reason="marketing site",
                actor=devops_lead,
            )


def test_a_portal_policy_sets_a_floor_no_repository_policy_goes_below(
    author: User, tech_lead: User
) -> None:
    item = PortalPolicy(
        name="data_protection",
        source="package data_protection\n\ndeny := set()\n",
        level="hard",
        environments=["prod"],
    )
    service.portal_policy_save(item, actor="admin")
    with time_machine.travel(IN_WINDOW, tick=False):
        ticket = evaluated(awaiting("prod", author), DESTROY_DATABASE)
    rows = PolicyResult.objects.filter(run=ticket.current_plan, policy="data_protection")
    by_source = {r.source: (r.level, r.outcome, r.version_sha256) for r in rows}
    # The repository's soft policy is enforced at the portal's hard level.
    assert by_source["repo"][:2] == ("hard", "fail")
    assert by_source["portal"] == ("hard", "pass", item.sha256)
    assert len(item.sha256) == 64 and item.version == 1
    detail = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert detail["policy_status"] == "blocked"
    assert AuditEvent.objects.filter(action="policy.portal_save").exists()
    # Every save is a new version with its digest.
    item.source = 'package data_protection\n\ndeny := {"no"}\n'
    service.portal_policy_save(item, actor="admin")
    assert list(item.versions.values_list("version", flat=True)) == [2, 1]


def test_the_apply_start_rechecks_the_policies(
    author: User, tech_lead: User, devops_lead: User
) -> None:
    with time_machine.travel(IN_WINDOW, tick=False):
        ticket = evaluated(awaiting("prod", author), aws_plan())
        for user in (tech_lead, devops_lead):
            assert approve(user, ticket).status_code == 200
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.APPROVED
        plan = ticket.current_plan
        apply_run = TerraformRun.objects.create(
            ticket=ticket,
            environment=ticket.environment,
            kind=RunKind.APPLY,
            plan=plan,
            commit_sha=plan.commit_sha,
            workspace=plan.workspace,
            var_file=plan.var_file,
        )
        recheck_start(ticket, apply_run, now=ticket.status_changed_at)  # passes as it is
        # A result that blocks (written by hand: results are never edited) stops the start.
        PolicyResult.objects.create(
            run=plan,
            policy="late",
            source="portal",
            level="hard",
            outcome="error",
            messages=["late: boom"],
        )
        with pytest.raises(policy.ApplyRefused, match="policy late"):
            recheck_start(ticket, apply_run, now=ticket.status_changed_at)


def test_a_plan_without_its_document_fails_closed(author: User) -> None:
    ticket = awaiting("prod", author)
    files, manifest = read_policy_folder(POLICIES)
    result = tf.PlanResult(
        exit_code=0,
        policy_files=tuple(sorted(files.items())),
        policy_manifest=manifest,
        policy_error="the plan's JSON is 99 bytes, more than the 10 policies may read",
    )
    with transaction.atomic():
        service.policy_input_keep(ticket.current_plan, result)
        service.policy_evaluate(ticket, ticket.current_plan)
    rows = PolicyResult.objects.filter(run=ticket.current_plan)
    assert rows.count() == 5
    assert {(r.level, r.outcome) for r in rows} == {("hard", "error")}
    assert "more than the 10 policies may read" in rows[0].messages[0]


def test_a_bad_manifest_fails_closed_as_the_policy_folder(author: User) -> None:
    ticket = awaiting("prod", author)
    result = tf.PlanResult(
        exit_code=0,
        policy_document=b"{}",
        policy_folder_error='policies: manifest.json: tags has level "strict"',
    )
    with transaction.atomic():
        service.policy_input_keep(ticket.current_plan, result)
        service.policy_evaluate(ticket, ticket.current_plan)
    row = PolicyResult.objects.get(run=ticket.current_plan)
    assert (row.policy, row.level, row.outcome) == ("(policy folder)", "hard", "error")
    assert 'tags has level "strict"' in row.messages[0]
