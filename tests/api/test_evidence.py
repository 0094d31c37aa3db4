"""Evidence: who may upload and sign off what, files kept byte for byte, hostile uploads,
and QA's sign-off completing a staging ticket (or a failed smoke test marking it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from deployments.choices import TicketStatus
from deployments.lib import uploads
from deployments.models import AuditEvent, Environment, Evidence, Ticket
from tests.helpers.api import api_for
from tests.helpers.evidence import PDF, PNG, staging_ticket, stored_files, upload
from tests.helpers.factories import TicketFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_dir")]


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- upload, digest, download ------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "verdict"),
    [(None, None), ("", None), ("false", False), ("False", False), ("True", True)],
)
def test_a_verdict_form_field_left_out_or_empty_is_no_verdict(
    author: User, qa: User, sent: str | None, verdict: bool | None
) -> None:
    """The form field as the schema describes it: true or false (a generated client sends
    Python's "True"), or left out; never read as false when absent."""
    ticket = staging_ticket(author)
    data: dict[str, Any] = {"file": SimpleUploadedFile("smoke.txt", b"ok\n"), "kind": "other"}
    if sent is not None:
        data["passed"] = sent
    response = api_for(qa).post(f"/api/v1/tickets/{ticket.pk}/evidence/", data, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["passed"] is verdict
    assert Evidence.objects.get().passed is verdict


def test_upload_keeps_the_file_byte_for_byte_with_its_digest(
    author: User, qa: User, evidence_dir: Path
) -> None:
    import hashlib

    ticket = staging_ticket(author)
    content = bytes(range(256)) * 1000
    response = upload(author, ticket, content, name="results.bin", kind="other")
    assert response.status_code == 201, response.json()
    item = response.json()
    assert item["filename"] == "results.bin"
    assert item["size"] == len(content)
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    assert item["uploaded_by"] == "alice" and item["passed"] is None
    assert item["content_type"] == "application/octet-stream"
    download = api_for(qa).get(item["download_url"])
    assert download.status_code == 200
    assert body(download) == content
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment")
    # Listed on the ticket, stored privately under the portal's own name.
    detail = api_for(author).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [e["id"] for e in detail["evidence"]] == [item["id"]]
    [path] = stored_files(evidence_dir)
    assert "results" not in path.name and (path.stat().st_mode & 0o077) == 0
    event = AuditEvent.objects.get(action="evidence.upload")
    assert event.data["sha256"] == item["sha256"] and event.actor == author


def test_images_pdf_and_text_open_inline_with_their_sniffed_type(author: User) -> None:
    ticket = staging_ticket(author)
    for content, name, expected in (
        (PNG, "shot.dat", "image/png"),
        (PDF, "report", "application/pdf"),
        (b"12 passed, 0 failed\n", "log.html", "text/plain"),
    ):
        item = upload(author, ticket, content, name=name, kind="screenshot").json()
        assert item["content_type"] == expected
        response = api_for(author).get(item["download_url"])
        assert response["Content-Type"] == expected
        assert response["Content-Disposition"].startswith("inline")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert body(response) == content


@pytest.mark.parametrize(
    ("content", "sniffed"),
    [
        (b"<!DOCTYPE html><script>alert(document.cookie)</script>", "text/html"),
        (b"  <html><body onload=alert(1)>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"),
        (b"\xef\xbb\xbf<?xml version='1.0'?><svg/>", "image/svg+xml"),
    ],
)
def test_markup_named_like_an_image_is_only_ever_an_attachment(
    author: User, content: bytes, sniffed: str
) -> None:
    ticket = staging_ticket(author)
    item = upload(author, ticket, content, name="innocent.png", kind="screenshot").json()
    assert item["content_type"] == sniffed
    response = api_for(author).get(item["download_url"])
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\qa\\Desktop\\report.pdf", "report.pdf"),
        ("/var/www/.htaccess", "htaccess"),
        ("smoke\x00.txt", "smoke.txt"),
        ("a" * 300 + ".txt", "a" * 196 + ".txt"),
    ],
)
def test_file_names_lose_any_path(author: User, sent: str, kept: str) -> None:
    ticket = staging_ticket(author)
    response = upload(author, ticket, b"x", name=sent, kind="other")
    assert response.status_code == 201, response.json()
    assert response.json()["filename"] == kept
    assert kept in api_for(author).get(response.json()["download_url"])["Content-Disposition"]


@given(st.text(max_size=400))
def test_safe_filename_never_holds_a_path_or_control_character(name: str) -> None:
    kept = uploads.safe_filename(name)
    assert kept and len(kept) <= uploads.FILENAME_MAX
    assert "/" not in kept and "\\" not in kept and not kept.startswith(".")
    assert all(ord(c) >= 32 and c != "\x7f" for c in kept)


def test_a_changed_file_is_refused_not_served(author: User, evidence_dir: Path) -> None:
    ticket = staging_ticket(author)
    item = upload(author, ticket, b"original", name="a.txt", kind="other").json()
    [path] = stored_files(evidence_dir)
    path.write_bytes(b"tampered")
    response = api_for(author).get(item["download_url"])
    assert response.status_code == 409
    assert "no longer matches the SHA-256" in response.json()["detail"]


# --- hostile uploads ----------------------------------------------------------------


def test_a_file_over_the_limit_is_refused_with_413_and_nothing_is_kept(
    author: User, settings: Any, evidence_dir: Path
) -> None:
    settings.EVIDENCE_MAX_BYTES = 4096
    ticket = staging_ticket(author)
    response = upload(author, ticket, b"x" * 4097, name="big.log", kind="other")
    assert response.status_code == 413
    assert "larger than the 4096 bytes limit" in response.json()["detail"]
    assert not Evidence.objects.exists() and stored_files(evidence_dir) == []
    assert not AuditEvent.objects.filter(action="evidence.upload").exists()
    exactly = upload(author, ticket, b"x" * 4096, name="fits.log", kind="other")
    assert exactly.status_code == 201


def test_a_body_declared_too_large_is_refused_before_it_is_read(
    author: User, settings: Any
) -> None:
    settings.EVIDENCE_MAX_BYTES = 1024
    ticket = staging_ticket(author)
    huge = uploads.max_body_bytes() + 1
    response = api_for(author).generic(
        "POST",
        f"/api/v1/tickets/{ticket.pk}/evidence/",
        b"--x--\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(huge),
    )
    assert response.status_code == 413
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "smoke_tests"}, "file"),
        ({"kind": "selfie", "file": b"x"}, "kind"),
        ({"kind": "other", "file": b""}, "file"),
        ({"kind": "other", "file": b"x", "passed": "maybe"}, "passed"),
    ],
)
def test_bad_upload_input_is_a_400_naming_the_field(
    author: User, data: dict[str, Any], field: str
) -> None:
    ticket = staging_ticket(author)
    if "file" in data:
        data["file"] = SimpleUploadedFile("f.txt", data["file"])
    response = api_for(author).post(
        f"/api/v1/tickets/{ticket.pk}/evidence/", data, format="multipart"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Evidence.objects.exists()


# --- who may upload and sign off --------------------------------------------------------


def test_only_qa_uploads_a_qa_report(author: User, developer: User, qa: User) -> None:
    ticket = staging_ticket(author)
    for user in (author, developer):
        refused = upload(user, ticket, name="r.txt", kind="qa_report")
        assert refused.status_code == 403
        assert refused.json()["detail"] == "only QA may upload a qa_report"
    assert upload(qa, ticket, name="r.txt", kind="qa_report").status_code == 201


def test_only_qa_marks_evidence_passed_others_may_report_a_failure(
    author: User, lead: User, qa: User
) -> None:
    ticket = staging_ticket(author)
    for user in (author, lead):
        refused = upload(user, ticket, kind="smoke_tests", passed=True)
        assert refused.status_code == 403
        assert "only QA may mark evidence passed" in refused.json()["detail"]
    failed = upload(author, ticket, kind="smoke_tests", passed=False)
    assert failed.status_code == 201 and failed.json()["passed"] is False
    assert failed.json()["signed_off_by"] is None
    passed = upload(qa, ticket, kind="smoke_tests", passed=True)
    assert passed.json()["signed_off_by"] == "quinn"


def test_ci_uploads_smoke_tests_and_only_qa_signs_them_off(
    author: User, developer: User, lead: User, qa: User
) -> None:
    ticket = staging_ticket(author)
    item = upload(developer, ticket, kind="smoke_tests").json()
    url = f"/api/v1/tickets/{ticket.pk}/evidence/{item['id']}/signoff/"
    for user in (author, developer, lead):
        refused = api_for(user).post(url, {"passed": True}, format="json")
        assert refused.status_code == 403
        assert refused.json()["detail"] == "only QA may sign evidence off"
    signed = api_for(qa).post(url, {"passed": True, "note": "checked the run"}, format="json")
    assert signed.status_code == 200, signed.json()
    assert signed.json() | {"signed_off_at": None} == signed.json() | {
        "passed": True,
        "signed_off_by": "quinn",
        "signoff_note": "checked the run",
        "signed_off_at": None,
    }
    again = api_for(qa).post(url, {"passed": False}, format="json")
    assert again.status_code == 409
    assert "quinn already signed this evidence off" in again.json()["detail"]
    assert api_for(qa).post(url, {}, format="json").status_code == 400
    event = AuditEvent.objects.get(action="evidence.signoff")
    assert event.actor == qa and event.data["passed"] is True


def test_evidence_outside_the_callers_scope_is_404(author: User, outsider: User, qa: User) -> None:
    ticket = staging_ticket(author)
    item = upload(author, ticket, kind="other").json()
    assert upload(outsider, ticket, kind="other").status_code == 404
    assert api_for(outsider).get(item["download_url"]).status_code == 404
    signoff = f"/api/v1/tickets/{ticket.pk}/evidence/{item['id']}/signoff/"
    assert api_for(outsider).post(signoff, {"passed": True}, format="json").status_code == 404
    # An item of another ticket is not reachable through a ticket the caller sees.
    other = staging_ticket(author)
    wrong = f"/api/v1/tickets/{other.pk}/evidence/{item['id']}/download/"
    assert api_for(author).get(wrong).status_code == 404
    # A prod ticket filed by someone else: a developer outside prod's viewers sees nothing.
    prod = TicketFactory(environment=Environment.objects.get(name="prod"), author=qa)
    Environment.objects.filter(name="prod").update(view_groups=["tech_lead"])
    assert upload(author, prod, kind="other").status_code == 404
    assert api_for(None).get(item["download_url"]).status_code in (401, 403)


def test_closed_tickets_take_no_more_evidence(author: User) -> None:
    ticket = staging_ticket(author, status=TicketStatus.CANCELLED)
    response = upload(author, ticket, kind="other")
    assert response.status_code == 409
    assert "takes no more evidence" in response.json()["detail"]


# --- QA sign-off completes staging; a failed smoke test marks it -----------------------


def test_qa_signoff_of_smoke_tests_and_report_completes_the_staging_ticket(
    author: User, developer: User, qa: User
) -> None:
    ticket = staging_ticket(author)
    smoke = upload(developer, ticket, kind="smoke_tests").json()
    upload(qa, ticket, name="shot.png", content=PNG, kind="screenshot")
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.MONITORING
    api_for(qa).post(
        f"/api/v1/tickets/{ticket.pk}/evidence/{smoke['id']}/signoff/",
        {"passed": True},
        format="json",
    )
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.MONITORING
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED and ticket.completed_at
    assert "signed off by QA (quinn)" in ticket.status_reason
    done = AuditEvent.objects.get(action="ticket.transition", data__to="completed")
    assert done.actor == qa


def test_a_failed_smoke_test_marks_the_ticket_until_qa_passes_new_evidence(
    author: User, developer: User, qa: User
) -> None:
    ticket = staging_ticket(author)
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    upload(developer, ticket, name="smoke-run-41.txt", kind="smoke_tests", passed=False)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING
    assert "smoke tests failed (smoke-run-41.txt)" in ticket.status_reason
    assert AuditEvent.objects.filter(action="ticket.flag").count() == 1
    client = Client()
    client.force_login(author)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="smoke-failed"' in page and "smoke-run-41.txt" in page
    upload(qa, ticket, name="smoke-run-42.txt", kind="smoke_tests", passed=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED


def test_a_failure_ci_reported_is_not_signed_over_qa_uploads_new_evidence(
    author: User, developer: User, qa: User
) -> None:
    """Once per item: the red run CI reported keeps its verdict (QA cannot turn it into a
    pass); QA passes a new run, which clears the mark."""
    ticket = staging_ticket(author)
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    red = upload(developer, ticket, name="smoke-run-41.txt", passed=False).json()
    url = f"/api/v1/tickets/{ticket.pk}/evidence/{red['id']}/signoff/"
    refused = api_for(qa).post(url, {"passed": True}, format="json")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "dave already reported this evidence failed; upload new evidence for a new verdict"
    )
    assert Evidence.objects.get(pk=red["id"]).passed is False
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING
    assert "smoke tests failed (smoke-run-41.txt)" in ticket.status_reason
    client = Client()
    client.force_login(qa)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f"/evidence/{red['id']}/signoff/" not in html  # no Pass button on it
    upload(qa, ticket, name="smoke-run-42.txt", passed=True)
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.COMPLETED


def test_verdicts_on_a_ticket_not_yet_deployed_complete_nothing(author: User, qa: User) -> None:
    ticket = staging_ticket(author, status=TicketStatus.AWAITING_APPROVAL)
    upload(qa, ticket, kind="smoke_tests", passed=True)
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_APPROVAL


def test_verdicts_given_before_the_apply_finished_do_not_complete_it(
    author: User, qa: User, monkeypatch: Any
) -> None:
    """QA passed smoke tests and the report while the apply was still running (issue 16):
    those verdicts speak of a state not deployed yet, so the apply leaves the ticket
    monitoring, the page says plainly that they do not count, and QA's verdicts given
    after the apply complete it."""
    from deployments import services
    from deployments.choices import RunKind, RunStatus
    from tests.helpers.factories import RunFactory

    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = staging_ticket(author, status=TicketStatus.APPLYING)
    plan = RunFactory(ticket=ticket, plan_sha256="a" * 64)
    apply = RunFactory(ticket=ticket, kind=RunKind.APPLY, status=RunStatus.RUNNING, plan=plan)
    early = [
        upload(qa, ticket, kind="smoke_tests", passed=True).json()["id"],
        upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True).json()["id"],
    ]
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPLYING
    services.run_finish(
        run_id=apply.pk, exit_code=0, error="", plan=None, stale=False, terraform_version="1"
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.MONITORING, ticket.status_reason
    body = api_for(qa).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [e["counts_for_signoff"] for e in body["evidence"]] == [False, False]
    client = Client()
    client.force_login(qa)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    for pk in early:
        assert f'id="verdict-before-apply-{pk}"' in html
    assert "given before the apply finished: it does not count" in html
    assert 'id="signoff-missing"' in html
    # Signed off again after the apply: now it completes.
    upload(qa, ticket, kind="smoke_tests", passed=True)
    upload(qa, ticket, name="qa.txt", kind="qa_report", passed=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason


# --- the ticket page ----------------------------------------------------------------


def test_the_page_uploads_several_files_at_once(author: User, evidence_dir: Path) -> None:
    ticket = staging_ticket(author)
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    page = client.get(f"/tickets/{ticket.pk}/")
    token = page.context["csrf_token"]
    html = page.content.decode()
    assert 'id="evidence-form"' in html and "multiple" in html
    assert 'value="qa_report"' not in html  # only QA is offered the QA report
    response = client.post(
        f"/tickets/{ticket.pk}/evidence/",
        {
            "csrfmiddlewaretoken": token,
            "kind": "screenshot",
            "file": [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("b.pdf", PDF)],
        },
    )
    assert response.status_code == 302
    assert sorted(Evidence.objects.values_list("filename", flat=True)) == ["a.png", "b.pdf"]
    assert len(stored_files(evidence_dir)) == 2
    # Without the CSRF token nothing is kept.
    forged = client.post(
        f"/tickets/{ticket.pk}/evidence/",
        {"kind": "other", "file": SimpleUploadedFile("c.txt", b"x")},
    )
    assert forged.status_code == 403 and Evidence.objects.count() == 2


def test_the_page_chooses_no_kind_for_the_uploader(author: User, qa: User) -> None:
    """The kind is picked by the person, never defaulted (QA would be offered the QA report
    first): the form asks for it, and a form sent without one keeps nothing."""
    ticket = staging_ticket(author)
    client = Client()
    client.force_login(qa)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert (
        '<select name="kind" id="evidence-kind" required><option value="">Choose the kind' in html
    )
    assert html.index('id="evidence-kind"') < html.index('id="evidence-drop"')
    response = client.post(
        f"/tickets/{ticket.pk}/evidence/",
        {"kind": "", "file": [SimpleUploadedFile("a.png", PNG)]},
        follow=True,
    )
    assert "kind must be one of qa_report, smoke_tests" in response.content.decode()
    assert not Evidence.objects.exists()


def test_the_page_refuses_an_oversized_file_and_keeps_none(
    author: User, settings: Any, evidence_dir: Path
) -> None:
    settings.EVIDENCE_MAX_BYTES = 1000
    ticket = staging_ticket(author)
    client = Client()
    client.force_login(author)
    response = client.post(
        f"/tickets/{ticket.pk}/evidence/",
        {
            "kind": "other",
            "file": [SimpleUploadedFile("ok.txt", b"x"), SimpleUploadedFile("big", b"y" * 1001)],
        },
        follow=True,
    )
    assert "Nothing uploaded: big is larger than the 1000 bytes limit" in response.content.decode()
    assert not Evidence.objects.exists() and stored_files(evidence_dir) == []


def test_qa_signs_off_on_the_page(author: User, developer: User, qa: User) -> None:
    ticket = staging_ticket(author)
    item = upload(developer, ticket, kind="smoke_tests").json()
    client = Client()
    client.force_login(qa)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f'action="/tickets/{ticket.pk}/evidence/{item["id"]}/signoff/"' in html
    response = client.post(
        f"/tickets/{ticket.pk}/evidence/{item['id']}/signoff/",
        {"passed": "true", "note": "green"},
        follow=True,
    )
    assert "smoke.txt signed off as passed" in response.content.decode()
    assert Evidence.objects.get(pk=item["id"]).signed_off_by == qa
    dev = Client()
    dev.force_login(developer)
    refused = dev.post(
        f"/tickets/{ticket.pk}/evidence/{item['id']}/signoff/", {"passed": "false"}, follow=True
    )
    assert "only QA may sign evidence off" in refused.content.decode()


def test_sniffing_ignores_what_the_client_claims() -> None:
    assert uploads.sniff_content_type(PNG) == "image/png"
    assert uploads.sniff_content_type(b"\x00\x01binary") == "application/octet-stream"
    assert uploads.sniff_content_type("résumé ok".encode()) == "text/plain"
    assert uploads.sniff_content_type(b"report\n<script>x</script>") == "text/html"
    assert not uploads.served_inline("image/svg+xml") and uploads.served_inline("image/png")
