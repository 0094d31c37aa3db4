"""The promotion gate: a normal prod ticket is approved only for a commit QA validated in
staging; the prod ticket links that staging ticket and shows its evidence to approvers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import policy
from deployments.choices import TicketStatus
from deployments.models import Environment, Ticket
from tests.helpers.api import api_for
from tests.helpers.evidence import staging_ticket, upload, validate_in_staging
from tests.helpers.factories import TicketFactory
from tests.helpers.tickets import approve, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_dir")]


def test_prod_without_a_staging_ticket_of_its_commit_is_refused(
    author: User, tech_lead: User
) -> None:
    ticket = awaiting("prod", author)
    response = approve(tech_lead, ticket)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"commit {ticket.commit_sha[:10]} validated in staging first" in detail
    assert "no staging ticket of this commit exists" in detail
    assert not ticket.approvals.exists()
    assert api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()["staging_ticket"] is None


def test_prod_waits_for_the_staging_ticket_to_be_signed_off(
    author: User, tech_lead: User, devops_lead: User, qa: User
) -> None:
    ticket = awaiting("prod", author)
    staging = staging_ticket(author, commit_sha=ticket.commit_sha)
    upload(qa, staging, kind="smoke_tests", passed=True)
    refused = approve(tech_lead, ticket)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"staging ticket #{staging.pk} (/tickets/{staging.pk}/) is monitoring" in detail
    assert "it still needs passed qa_report" in detail
    linked = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()["staging_ticket"]
    assert linked["id"] == staging.pk and linked["status"] == "monitoring"
    assert linked["validated"] is False and linked["missing"] == ["passed qa_report"]
    assert [e["kind"] for e in linked["evidence"]] == ["smoke_tests"]

    upload(qa, staging, name="qa.txt", kind="qa_report", passed=True)
    assert Ticket.objects.get(pk=staging.pk).status == TicketStatus.COMPLETED
    assert approve(tech_lead, ticket).status_code == 200
    assert approve(devops_lead, ticket).json()["status"] == "approved"
    linked = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()["staging_ticket"]
    assert linked["validated"] is True and linked["missing"] == []


def test_a_prod_ticket_for_another_commit_than_the_validated_one_is_refused(
    author: User, tech_lead: User
) -> None:
    validated = validate_in_staging("a" * 40)
    ticket = awaiting("prod", author, commit_sha="b" * 40)
    response = approve(tech_lead, ticket)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "commit bbbbbbbbbb validated in staging first" in detail
    assert f"staging validated commit aaaaaaaaaa (ticket #{validated.pk}" in detail


def test_a_completed_staging_ticket_without_passed_evidence_does_not_count(
    author: User, tech_lead: User
) -> None:
    ticket = awaiting("prod", author)
    staging = staging_ticket(author, commit_sha=ticket.commit_sha, status=TicketStatus.COMPLETED)
    response = approve(tech_lead, ticket)
    assert response.status_code == 409
    assert f"#{staging.pk}" in response.json()["detail"]
    assert "lacks passed smoke_tests and passed qa_report" in response.json()["detail"]


def test_emergencies_and_environments_without_the_switch_skip_the_gate(
    author: User, tech_lead: User, lead: User
) -> None:
    emergency = awaiting("prod", author, change_type="emergency")
    assert approve(tech_lead, emergency).json()["status"] == "approved"
    staging = awaiting("staging", author)
    assert approve(lead, staging).json()["status"] == "approved"
    Environment.objects.filter(name="prod").update(requires_staging_evidence=False)
    normal = awaiting("prod", author)
    assert approve(tech_lead, normal).status_code == 200


def test_the_prod_page_shows_the_gate_then_the_staging_evidence_by_the_approve_button(
    author: User, tech_lead: User, qa: User
) -> None:
    ticket = awaiting("prod", author)
    client = Client()
    client.force_login(tech_lead)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="promotion-gate"' in html and "no staging ticket of this commit" in html
    assert 'id="approve-form"' not in html
    assert "You cannot approve: prod needs commit" in html
    staging = validate_in_staging(ticket.commit_sha, qa=qa)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="promotion-gate"' not in html and 'id="staging-validated"' in html
    assert f'href="/tickets/{staging.pk}/"' in html
    assert "smoke.txt" in html and "report.txt" in html
    assert html.index('id="staging-evidence"') < html.index('id="approve-form"')


def test_check_promotion_is_pure() -> None:
    env = Environment(name="prod", requires_staging_evidence=True)
    ticket = TicketFactory.build(environment=env, commit_sha="c" * 40, change_type="normal")
    done = policy.StagingEvidence(1, "/tickets/1/", "completed", "c" * 40, ())
    policy.check_promotion(ticket, done)
    with pytest.raises(policy.PolicyError) as refused:
        policy.check_promotion(ticket, None)
    assert refused.value.kind == policy.PolicyError.STATE
    ticket.change_type = "rollback"
    policy.check_promotion(ticket, None)


def test_signoff_counts_the_latest_verdict_of_each_kind() -> None:
    v = policy.Verdict
    assert policy.signoff_missing([]) == ("passed smoke_tests", "passed qa_report")
    assert policy.signoff_missing([v("smoke_tests", True), v("qa_report", True)]) == ()
    late_fail = [v("smoke_tests", True), v("qa_report", True), v("smoke_tests", False)]
    assert policy.signoff_missing(late_fail) == ("passed smoke_tests",)
    assert policy.failed_smoke_tests(late_fail) == v("smoke_tests", False)
    assert policy.failed_smoke_tests([*late_fail, v("smoke_tests", True)]) is None
    assert policy.signoff_missing([v("smoke_tests", True), v("screenshot", True)]) == (
        "passed qa_report",
    )
