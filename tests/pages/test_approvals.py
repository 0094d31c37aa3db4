"""Approving, rejecting and deploying in the browser's pages (Django test client), with
step-up re-authentication for prod and MFA enrolment for leads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments.choices import TicketStatus
from deployments.models import Approval, AuditEvent, Environment, Ticket
from tests.helpers.factories import RunFactory
from tests.helpers.pages import login
from tests.helpers.tickets import awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


def test_ticket_page_says_who_must_still_approve_and_why_you_cannot(author: User) -> None:
    ticket = awaiting("prod", author)
    page = login("alice").get(f"/tickets/{ticket.pk}/").content.decode()
    assert "prod needs <strong>Tech Lead and DevOps Lead, two different people</strong>" in page
    assert 'id="still-needed">a Tech Lead and a DevOps Lead<' in page
    assert "You cannot approve: you authored this ticket; someone else must approve it." in page
    assert 'id="approve-form"' not in page


def test_staging_lead_approves_in_the_page(author: User, lead: User) -> None:
    ticket = awaiting("staging", author)
    client = login("lena")
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="approve-form"' in page and 'id="reject-form"' in page
    response = client.post(
        f"/tickets/{ticket.pk}/approve/",
        {"comment": "ok", "plan_sha256": ticket.current_plan.plan_sha256},
        follow=True,
    )
    assert "Approved." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED
    assert "lena</strong> as Lead Developer" in response.content.decode()


def test_a_refused_approval_shows_the_reason_and_changes_nothing(author: User, qa: User) -> None:
    ticket = awaiting("staging", author)
    response = login("quinn").post(
        f"/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
        follow=True,
    )
    assert (
        "staging needs 1 approval from a Lead Developer or Tech Lead; you hold none of those roles"
        in (response.content.decode())
    )
    assert not Approval.objects.exists()


def test_prod_approval_asks_for_the_password_again_when_sign_in_is_old(
    author: User, tech_lead: User
) -> None:
    ticket = awaiting("prod", author)
    client = login("tess")
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10)):
        response = client.post(
            f"/tickets/{ticket.pk}/approve/",
            {"comment": "after reauth", "plan_sha256": ticket.current_plan.plan_sha256},
        )
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/reauthenticate/")
        assert not Approval.objects.exists()
        # Entering the password resumes the stashed approval.
        done = client.post(response["Location"], {"password": "pw"}, follow=True)
        assert done.status_code == 200
    approval = Approval.objects.get()
    assert approval.approver == tech_lead and approval.comment == "after reauth"


def test_prod_approval_right_after_sign_in_needs_no_second_password(
    author: User, tech_lead: User
) -> None:
    ticket = awaiting("prod", author)
    response = login("tess").post(
        f"/tickets/{ticket.pk}/approve/", {"plan_sha256": ticket.current_plan.plan_sha256}
    )
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.pk}/"
    assert Approval.objects.filter(approver=tech_lead).exists()


def test_rejecting_needs_a_reason(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    client = login("tess")
    response = client.post(f"/tickets/{ticket.pk}/reject/", {"reason": " "}, follow=True)
    assert "a rejection needs a reason" in response.content.decode()
    client.post(f"/tickets/{ticket.pk}/reject/", {"reason": "too risky on a Friday"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REJECTED


def test_leads_must_enrol_mfa_when_required(
    settings: Any, tech_lead: User, developer: User
) -> None:
    settings.MFA_REQUIRED_FOR_LEADS = True
    response = login("tess").get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/"
    assert login("dave").get("/").status_code == 200
    # The API does not redirect: it refuses with the reason (tests/lib/test_stepup.py).
    assert login("tess").get("/api/v1/environments/").status_code == 403
    assert login("dave").get("/api/v1/environments/").status_code == 200


def test_totp_enrolled_lead_passes(settings: Any, tech_lead: User) -> None:
    from allauth.mfa.models import Authenticator

    settings.MFA_REQUIRED_FOR_LEADS = True
    Authenticator.objects.create(
        user=tech_lead, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    client = Client()
    client.force_login(tech_lead)
    assert client.get("/").status_code == 200


def test_admin_edits_of_a_rule_are_validated_and_audited(db: None) -> None:
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    staging = Environment.objects.get(name="staging")
    url = f"/admin/deployments/environment/{staging.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {
        name: form.initial.get(name) if form.initial.get(name) is not None else ""
        for name in form.fields
    }
    import json

    for name in (
        "approval_rule",
        "emergency_approval_rule",
        "window_days",
        "view_groups",
        "file_groups",
        "deploy_groups",
        "freeze_groups",
        "emergency_escalating_answers",
    ):
        data[name] = json.dumps(form.initial[name])
    for flag in (
        "auto_deploy",
        "deploy_on_merge",
        "requires_change_details",
        "requires_staging_evidence",
        "requires_qa_signoff",
        "step_up_auth",
    ):
        if not form.initial.get(flag):
            data.pop(flag, None)
    bad = client.post(url, {**data, "approval_rule": json.dumps({"any_of": ["ceo"]})})
    assert bad.status_code == 200 and "unknown role &#x27;ceo&#x27;" in bad.content.decode()
    good = client.post(url, {**data, "approval_rule": json.dumps({"all_of": ["tech_lead"]})})
    assert good.status_code == 302
    staging.refresh_from_db()
    assert staging.approval_rule == {"all_of": ["tech_lead"]}
    event = AuditEvent.objects.get(action="environment.update")
    assert event.actor_name == "root"
    assert event.data["changes"]["approval_rule"] == {
        "from": {"any_of": ["lead_developer", "tech_lead"], "count": 1},
        "to": {"all_of": ["tech_lead"]},
    }


def test_an_approval_from_a_page_showing_a_replaced_plan_is_refused(
    author: User, lead: User
) -> None:
    ticket = awaiting("staging", author)
    client = login("lena")
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    seen = ticket.current_plan.plan_sha256
    assert f'name="plan_sha256" value="{seen}"' in page
    # Meanwhile a new plan replaces the one lena is looking at.
    newer = RunFactory(ticket=ticket, plan_sha256="d" * 64)
    Ticket.objects.filter(pk=ticket.pk).update(current_plan=newer)
    response = client.post(f"/tickets/{ticket.pk}/approve/", {"plan_sha256": seen}, follow=True)
    assert (
        f"the plan changed since you reviewed it: plan run #{newer.pk} (dddddddddddd) replaced "
        f"plan {seen[:12]}; review the new plan and approve again" in response.content.decode()
    )
    assert not Approval.objects.exists()
    missing = client.post(f"/tickets/{ticket.pk}/approve/", {}, follow=True)
    assert "the form did not say which plan you reviewed" in missing.content.decode()
    assert not Approval.objects.exists()
