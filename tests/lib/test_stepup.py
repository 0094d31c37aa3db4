"""Step-up security holds on every path: pages, the session API and the token API all pass
the one rule in deployments/stepup.py (MFA enrolment for leads, recent re-authentication for
prod approve/deploy)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from deployments import services
from deployments.choices import RunKind, TicketStatus
from deployments.models import Approval, TerraformRun
from tests.helpers.keys import new_key
from tests.helpers.pages import login
from tests.helpers.tickets import IN_WINDOW, approved, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {new_key(user)}")
    return client


def session_api(username: str) -> Client:
    """The browser's session (a real password sign-in) with CSRF enforced, as a page's
    script would call the API."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        {
            "login": username,
            "password": "pw",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302, response.content[:300]
    return client


def post_json(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(
        url,
        data or {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def enrol_totp(user: User) -> None:
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )


# --- session auth with CSRF ------------------------------------------------------------


def test_the_session_api_needs_the_csrf_token_and_a_token_does_not(
    author: User, head_sha: str
) -> None:
    """A browser session calling the API must send X-CSRFToken (else a page on another site
    could file tickets as the signed-in user); a token request carries no cookie and needs
    none."""
    from deployments.models import Ticket

    body = {"title": "from a page", "environment": "dev"}
    client = session_api("alice")
    forged = client.post("/api/v1/tickets/", body, content_type="application/json")
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    wrong = client.post(
        "/api/v1/tickets/", body, content_type="application/json", HTTP_X_CSRFTOKEN="x" * 64
    )
    assert wrong.status_code == 403
    assert not Ticket.objects.exists()
    assert client.get("/api/v1/tickets/").status_code == 200  # reading needs no token
    assert post_json(client, "/api/v1/tickets/", body).status_code == 201
    by_token = token_client(author).post("/api/v1/tickets/", body, format="json")
    assert by_token.status_code == 201, by_token.json()
    assert Ticket.objects.count() == 2


# --- MFA enrolment ----------------------------------------------------------------------


def test_unenrolled_lead_cannot_approve_through_the_session_api(
    settings: Any, author: User, lead: User
) -> None:
    settings.MFA_REQUIRED_FOR_LEADS = True
    ticket = awaiting("staging", author)
    client = session_api("lena")
    response = post_json(
        client,
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
    )
    assert response.status_code == 403
    assert "/accounts/2fa/" in response.json()["detail"]
    assert "two-factor" in response.json()["detail"]
    assert not Approval.objects.exists()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL


def test_unenrolled_lead_token_is_refused_naming_the_reason(
    settings: Any, author: User, lead: User
) -> None:
    settings.MFA_REQUIRED_FOR_LEADS = True
    ticket = awaiting("staging", author)
    client = token_client(lead)
    response = client.post(
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
        format="json",
    )
    assert response.status_code == 403
    assert "enrol an authenticator app at /accounts/2fa/" in response.json()["detail"]
    assert not Approval.objects.exists()
    # Not acting as a lead by any path: reading with the lead's role is refused too.
    listing = client.get("/api/v1/tickets/")
    assert listing.status_code == 403 and "/accounts/2fa/" in listing.json()["detail"]


def test_enrolled_lead_token_approves_and_others_are_unaffected(
    settings: Any, author: User, lead: User, developer: User
) -> None:
    settings.MFA_REQUIRED_FOR_LEADS = True
    enrol_totp(lead)
    ticket = awaiting("staging", author)
    response = token_client(lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert Approval.objects.filter(approver=lead).exists()
    # A developer holds no lead role: MFA is not required of them.
    assert token_client(developer).get("/api/v1/tickets/").status_code == 200


def test_mfa_rule_off_lets_unenrolled_leads_act(author: User, lead: User) -> None:
    ticket = awaiting("staging", author)
    response = token_client(lead).post(
        f"/api/v1/tickets/{ticket.pk}/approve/",
        {"plan_sha256": ticket.current_plan.plan_sha256},
        format="json",
    )
    assert response.status_code == 200


# --- re-authentication for prod approve/deploy ------------------------------------------


def test_stale_session_cannot_approve_prod_through_the_api(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    client = session_api("tess")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)):
        response = post_json(
            client,
            f"/api/v1/tickets/{ticket.pk}/approve/",
            {"plan_sha256": ticket.current_plan.plan_sha256},
        )
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "sign in again at /accounts/reauthenticate/" in detail and "prod" in detail
    assert not Approval.objects.exists()


def test_reauthenticating_lets_the_session_approve_prod(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    client = session_api("tess")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)):
        reauth = client.post(
            "/accounts/reauthenticate/",
            {"password": "pw", "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
        )
        assert reauth.status_code == 302
        response = post_json(
            client,
            f"/api/v1/tickets/{ticket.pk}/approve/",
            {"plan_sha256": ticket.current_plan.plan_sha256},
        )
    assert response.status_code == 200, response.json()
    assert Approval.objects.filter(approver=tech_lead).exists()


def test_fresh_session_approves_prod_and_staging_needs_no_step_up(
    author: User, tech_lead: User
) -> None:
    prod = awaiting("prod", author)
    staging = awaiting("staging", author)
    client = session_api("tess")
    response = post_json(
        client,
        f"/api/v1/tickets/{prod.pk}/approve/",
        {"plan_sha256": prod.current_plan.plan_sha256},
    )
    assert response.status_code == 200, response.json()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)):
        response = post_json(
            client,
            f"/api/v1/tickets/{staging.pk}/approve/",
            {"plan_sha256": staging.current_plan.plan_sha256},
        )
    assert response.status_code == 200, response.json()


@time_machine.travel(IN_WINDOW, tick=False)
def test_stale_session_cannot_deploy_prod_through_the_api(
    author: User, tech_lead: User, devops_lead: User, operations: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = approved("prod", author, tech_lead, devops_lead)
    client = session_api("opal")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30), tick=False):
        response = post_json(client, f"/api/v1/tickets/{ticket.pk}/deploy/")
        assert response.status_code == 403
        assert "/accounts/reauthenticate/" in response.json()["detail"]
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.APPROVED
        assert not TerraformRun.objects.filter(kind=RunKind.APPLY).exists()
        # A token is a machine credential, not a browser session: it may deploy (README).
        by_token = token_client(operations).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
        assert by_token.status_code == 202, by_token.json()


def test_step_up_never_discloses_a_ticket_the_caller_cannot_see(
    author: User, outsider: User
) -> None:
    ticket = awaiting("prod", author)
    client = session_api("charlie")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)):
        response = post_json(
            client,
            f"/api/v1/tickets/{ticket.pk}/approve/",
            {"plan_sha256": ticket.current_plan.plan_sha256},
        )
    assert response.status_code == 404


def test_pages_and_api_share_one_rule() -> None:
    """The page decorator and the API permission both call deployments.lib.stepup."""
    import inspect

    from deployments.api.support import permissions
    from deployments.lib import middleware
    from deployments.pages import tickets as views

    assert "stepup.needs_reauthentication" in inspect.getsource(
        views.step_up_for_sensitive_environments
    )
    assert "stepup.must_enrol_mfa" in inspect.getsource(middleware)
    assert "stepup.check_mfa" in inspect.getsource(permissions)
    assert not hasattr(views, "_recently_authenticated")


def test_leads_page_login_still_redirects_to_enrolment(settings: Any, tech_lead: User) -> None:
    settings.MFA_REQUIRED_FOR_LEADS = True
    response = login("tess").get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/"


def test_an_unenrolled_leads_calendar_feed_token_is_refused_until_enrolled(
    settings: Any, author: User, tech_lead: User
) -> None:
    """The .ics feed authenticates by its own token: a lead who must enrol reads nothing
    through it either (a token made while a developer keeps working after promotion)."""
    from deployments.models import CalendarFeedToken

    settings.MFA_REQUIRED_FOR_LEADS = True
    token = CalendarFeedToken.objects.create(user=tech_lead).token
    refused = Client().get(f"/calendar/prod.ics?token={token}")
    assert refused.status_code == 403
    body = refused.content.decode()
    assert "/accounts/2fa/" in body and "BEGIN:VCALENDAR" not in body
    enrol_totp(tech_lead)
    feed = Client().get(f"/calendar/prod.ics?token={token}")
    assert feed.status_code == 200 and b"BEGIN:VCALENDAR" in feed.content


def test_a_stale_session_cannot_override_a_prod_policy_by_the_api_or_the_page(
    author: User, devops_lead: User
) -> None:
    """A policy override lifts a block as an approval does: the same step-up on prod."""
    from deployments.models import PolicyOverride
    from tests.helpers.policies import aws_plan, change, evaluated

    destroy = aws_plan(change("aws_db_instance.main", "aws_db_instance", ["delete"], None))
    ticket = evaluated(awaiting("prod", author), destroy)
    body = {
        "policy": "data_protection",
        "plan_sha256": ticket.current_plan.plan_sha256,
        "reason": "the data moved",
    }
    client = session_api("otto")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)):
        response = post_json(client, f"/api/v1/tickets/{ticket.pk}/policy-overrides/", body)
        assert response.status_code == 403
        assert "sign in again at /accounts/reauthenticate/" in response.json()["detail"]
        page = client.post(
            f"/tickets/{ticket.pk}/policy-overrides/",
            {**body, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
        )
        assert page.status_code == 302 and "/accounts/reauthenticate/" in page["Location"]
    assert not PolicyOverride.objects.exists()
    # A token has no session to re-authenticate: it overrides as before.
    answer = token_client(devops_lead).post(
        f"/api/v1/tickets/{ticket.pk}/policy-overrides/", body, format="json"
    )
    assert answer.status_code == 201, answer.json()
