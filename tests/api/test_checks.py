"""CI check results on tickets: reporting (201/400/403/404), history, redaction, the page,
and environments that require named checks to have passed before approval."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import services
from deployments.models import AuditEvent, CheckResult, Environment, Ticket
from deployments.services.checks import CHECK_LOG_MAX
from tests.helpers.api import api_for
from tests.helpers.tickets import approve, awaiting

pytestmark = pytest.mark.django_db


def post_check(user: User, ticket: Ticket, **body: Any) -> Any:
    return api_for(user).post(f"/api/v1/tickets/{ticket.pk}/checks/", body, format="json")


def test_ci_posts_its_four_checks_and_the_detail_shows_them(author: User, lead: User) -> None:
    ticket = awaiting("staging", author)
    for name in ("fmt", "validate", "security_scan", "plan"):
        answer = post_check(
            author,
            ticket,
            name=name,
            status="passed",
            summary=f"{name} ok",
            url=f"https://ci.example.com/run/1#{name}",
        )
        assert answer.status_code == 201, answer.json()
        assert answer.json()["name"] == name
        assert answer.json()["reported_by"] == "alice"
    detail = api_for(lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert sorted(c["name"] for c in detail["checks"]) == [
        "fmt",
        "plan",
        "security_scan",
        "validate",
    ]
    assert {c["status"] for c in detail["checks"]} == {"passed"}
    assert AuditEvent.objects.filter(action="check.report", ticket=ticket).count() == 4
    # And on the ticket page: a row per check with its status, summary, link and log.
    assert (
        post_check(author, ticket, name="plan", status="failed", log="Error: x").status_code == 201
    )
    page = Client()
    page.force_login(lead)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    for name in ("fmt", "validate", "security_scan"):
        assert f'id="check-{name}" data-status="passed"' in html
        assert f"{name} ok" in html
        assert f'href="https://ci.example.com/run/1#{name}"' in html
    assert 'id="check-plan" data-status="failed"' in html
    assert '<pre class="log">Error: x</pre>' in html


def test_repeated_names_keep_history_and_the_latest_counts(author: User, lead: User) -> None:
    ticket = awaiting("staging", author)
    assert post_check(author, ticket, name="Plan", status="failed").status_code == 201
    assert post_check(author, ticket, name="plan", status="passed").status_code == 201
    assert list(CheckResult.objects.filter(ticket=ticket).values_list("name", flat=True)) == [
        "plan",
        "plan",
    ]
    page = Client()
    page.force_login(lead)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="check-plan" data-status="passed"' in html
    assert "1 earlier report" in html


def test_log_is_redacted_and_bounded(author: User) -> None:
    ticket = awaiting("dev", author)
    leaked = "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
    answer = post_check(author, ticket, name="plan", status="passed", log=f"line\n{leaked}\n")
    assert answer.status_code == 201
    stored = CheckResult.objects.get().log
    assert "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" not in stored
    assert "[REDACTED]" in stored
    too_long = post_check(
        author, ticket, name="plan", status="passed", log="x" * (CHECK_LOG_MAX + 1)
    )
    assert too_long.status_code == 400
    assert "log" in too_long.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "passed"}, "name"),
        ({"name": "fmt"}, "status"),
        ({"name": "fmt", "status": "skipped"}, "status"),
        ({"name": "has space", "status": "passed"}, "name"),
        ({"name": "fmt", "status": "passed", "url": "javascript:alert(1)"}, "url"),
        ({"name": "fmt", "status": "passed", "url": "ftp://example.com/x"}, "url"),
        ({"name": "fmt", "status": "passed", "summary": "a\x00b"}, "detail"),
    ],
)
def test_bad_input_is_400_naming_the_field(author: User, body: dict[str, Any], field: str) -> None:
    ticket = awaiting("dev", author)
    answer = post_check(author, ticket, **body)
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()
    assert not CheckResult.objects.exists()


def test_who_may_report(author: User, qa: User, outsider: User, operations: User) -> None:
    """Those who may file in the ticket's environment report; others who see it get 403,
    those who do not see it 404, and anonymous callers 401."""
    staging = awaiting("staging", author)
    prod = awaiting("prod", author)
    assert post_check(outsider, staging, name="fmt", status="passed").status_code == 404
    assert post_check(qa, prod, name="fmt", status="passed").status_code == 404
    refused = post_check(operations, staging, name="fmt", status="passed")
    assert refused.status_code == 403, refused.json()
    assert "may not file staging tickets" in refused.json()["detail"]
    assert not CheckResult.objects.exists()
    assert post_check(qa, staging, name="fmt", status="passed").status_code == 201
    assert post_check(author, prod, name="fmt", status="passed").status_code == 201
    assert CheckResult.objects.count() == 2
    anonymous = api_for(None).post(
        f"/api/v1/tickets/{prod.pk}/checks/", {"name": "x", "status": "passed"}, format="json"
    )
    assert anonymous.status_code == 401


def test_required_checks_gate_approval(author: User, lead: User) -> None:
    staging = Environment.objects.get(name="staging")
    staging.required_checks = ["fmt", "plan"]
    staging.save()
    ticket = awaiting("staging", author)
    refused = approve(lead, ticket)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "staging tickets need the checks fmt, plan to have passed before approval "
        "(not reported: fmt, plan)"
    )
    post_check(author, ticket, name="fmt", status="passed")
    post_check(author, ticket, name="plan", status="failed")
    refused = approve(lead, ticket)
    assert refused.status_code == 409
    assert "(failed: plan)" in refused.json()["detail"]
    # The page offers no approve button and says why, with the same sentence.
    page = Client()
    page.force_login(lead)
    html = page.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="approve-form"' not in html
    assert "failed: plan" in html
    assert not ticket.approvals.exists()
    post_check(author, ticket, name="plan", status="passed")
    assert approve(lead, ticket).status_code == 200
    assert Ticket.objects.get(pk=ticket.pk).status == "approved"


@pytest.mark.parametrize(
    "value", [["fmt", "fmt"], "fmt", [1], ["Has Space"], [""], None, {"fmt": True}]
)
def test_required_checks_validated(value: Any) -> None:
    env = Environment.objects.get(name="staging")
    env.required_checks = value
    with pytest.raises(services.InputError) as refused:
        services.environments.environment_validate(env)
    assert refused.value.field == "required_checks"


def test_seeded_environments_require_no_checks() -> None:
    assert all(env.required_checks == [] for env in Environment.objects.all())


def test_the_log_may_come_as_a_file_of_a_multipart_form(author: User) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    ticket = awaiting("dev", author)
    url = f"/api/v1/tickets/{ticket.pk}/checks/"
    leaked = "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
    text = f"Checkov: 12 passed, 1 failed\n{leaked}\nnaïve ✓\n"
    answer = api_for(author).post(
        url,
        {
            "name": "security_scan",
            "status": "failed",
            "summary": "1 finding",
            "log_file": SimpleUploadedFile("checkov.txt", text.encode(), "text/plain"),
        },
        format="multipart",
    )
    assert answer.status_code == 201, answer.json()
    stored = CheckResult.objects.get()
    assert stored.name == "security_scan" and stored.status == "failed"
    assert stored.log.startswith("Checkov: 12 passed, 1 failed\n") and "naïve ✓" in stored.log
    assert "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" not in stored.log

    def refused(**extra: Any) -> Any:
        return api_for(author).post(
            url, {"name": "fmt", "status": "passed", **extra}, format="multipart"
        )

    binary = refused(log_file=SimpleUploadedFile("x.bin", b"\x7fELF\x00\x01", "text/plain"))
    too_long = refused(log_file=SimpleUploadedFile("big.txt", b"x" * (CHECK_LOG_MAX + 1)))
    both = refused(log="text", log_file=SimpleUploadedFile("a.txt", b"file"))
    for answer in (binary, too_long, both):
        assert answer.status_code == 400 and "log_file" in answer.json()
    assert CheckResult.objects.count() == 1  # nothing more stored
