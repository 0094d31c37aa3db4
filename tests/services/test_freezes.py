"""Who may declare, change and lift a freeze, and for how long (issue 16, hole 6).

Per environment (Environment.freeze_groups), decided in policy and asked by the services,
so the API, the environments page and the admin all keep it: a Lead Developer may freeze
dev and staging, not prod; nobody freezes longer than FREEZE_MAX_DAYS (14); lifting one
early is audited with who and why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from deployments import policy, services
from deployments.models import AuditEvent, Environment, Freeze
from tests.helpers.api import api_for

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _body(start: dt.datetime, end: dt.datetime, reason: str = "launch") -> dict[str, str]:
    return {"starts_at": start.isoformat(), "ends_at": end.isoformat(), "reason": reason}


def _env(name: str) -> Environment:
    return Environment.objects.get(name=name)


def test_the_rules_are_per_environment_with_a_maximum_length() -> None:
    prod, staging = _env("prod"), _env("staging")
    assert policy.freeze_roles(prod) == {"tech_lead", "devops_lead", "operations"}
    assert "lead_developer" in policy.freeze_roles(staging)
    with pytest.raises(policy.PolicyError) as refused:
        policy.check_may_manage_freezes(prod, {"lead_developer", "developer"})
    assert refused.value.kind == policy.PolicyError.ACTOR
    assert str(refused.value) == (
        "prod freezes are declared, changed and lifted by DevOps Lead or Operations or Tech Lead"
    )
    policy.check_may_manage_freezes(staging, {"lead_developer"})
    policy.check_may_manage_freezes(prod, set(), superuser=True)
    assert policy.freeze_length_problem(NOW, NOW + dt.timedelta(days=14), max_days=14) is None
    field, why = policy.freeze_length_problem(
        NOW, NOW + dt.timedelta(days=14, seconds=60), max_days=14
    ) or ("", "")
    assert field == "ends_at" and "at most 14 days (FREEZE_MAX_DAYS)" in why
    assert policy.check_may_lift_freeze(NOW - dt.timedelta(hours=1), NOW + dt.timedelta(1), NOW)
    assert policy.check_may_lift_freeze(NOW, NOW + dt.timedelta(hours=1), NOW) == "cancel"
    with pytest.raises(policy.PolicyError, match="nothing to lift"):
        policy.check_may_lift_freeze(NOW - dt.timedelta(hours=2), NOW, NOW)


@time_machine.travel(NOW, tick=False)
def test_a_lead_developer_cannot_freeze_prod_until_9999(lead: User) -> None:
    forever = _body(NOW, dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    refused = api_for(lead).post("/api/v1/environments/prod/freezes/", forever, format="json")
    assert refused.status_code == 403, refused.json()
    assert "prod freezes are declared, changed and lifted by" in refused.json()["detail"]
    # Nor through the service, whoever calls it.
    with pytest.raises(policy.PolicyError):
        services.schedules.freeze_declare(
            actor=lead,
            environment=_env("prod"),
            starts_at=NOW,
            ends_at=NOW + dt.timedelta(days=1),
            reason="mine",
        )
    # Where the environment lets them (dev), within the limit, they may.
    ok = api_for(lead).post(
        "/api/v1/environments/dev/freezes/", _body(NOW, NOW + dt.timedelta(days=2)), format="json"
    )
    assert ok.status_code == 201, ok.json()
    assert not Freeze.objects.filter(environment__name="prod").exists()


@time_machine.travel(NOW, tick=False)
def test_no_freeze_lasts_longer_than_the_limit(settings: Any, operations: User) -> None:
    client = api_for(operations)
    url = "/api/v1/environments/prod/freezes/"
    too_long = client.post(url, _body(NOW, NOW + dt.timedelta(days=30)), format="json")
    assert too_long.status_code == 400, too_long.json()
    assert "ends_at" in too_long.json() and "at most 14 days" in str(too_long.json())
    settings.FREEZE_MAX_DAYS = 40
    assert (
        client.post(url, _body(NOW, NOW + dt.timedelta(days=30)), format="json").status_code == 201
    )
    settings.FREEZE_MAX_DAYS = 14
    created = client.post(url, _body(NOW, NOW + dt.timedelta(days=3)), format="json").json()
    # Extending it past the limit is refused too; within it, allowed and audited.
    patch = f"/api/v1/environments/prod/freezes/{created['id']}/"
    longer = client.patch(
        patch, {"ends_at": (NOW + dt.timedelta(days=20)).isoformat()}, format="json"
    )
    assert longer.status_code == 400 and "at most 14 days" in str(longer.json())
    moved = client.patch(
        patch, {"ends_at": (NOW + dt.timedelta(days=5)).isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.json()
    update = AuditEvent.objects.get(action="freeze.update")
    assert update.data["before"]["ends_at"] == (NOW + dt.timedelta(days=3)).isoformat()


@time_machine.travel(NOW, tick=False)
def test_lifting_early_is_for_who_may_and_is_audited(
    lead: User, operations: User, devops_lead: User
) -> None:
    freeze = Freeze.objects.create(
        environment=_env("prod"),
        starts_at=NOW - dt.timedelta(hours=2),
        ends_at=NOW + dt.timedelta(days=2),
        reason="incident",
        declared_by=operations,
    )
    url = f"/api/v1/environments/prod/freezes/{freeze.pk}/lift/"
    refused = api_for(lead).post(url, {"reason": "I need to deploy"}, format="json")
    assert refused.status_code == 403
    assert (
        api_for(lead)
        .patch(f"/api/v1/environments/prod/freezes/{freeze.pk}/", {"reason": "x"}, format="json")
        .status_code
        == 403
    )
    assert api_for(devops_lead).post(url, {}, format="json").status_code == 400  # a reason
    lifted = api_for(devops_lead).post(url, {"reason": "incident resolved"}, format="json")
    assert lifted.status_code == 200, lifted.json()
    assert lifted.json()["withdrawn"] is False
    freeze.refresh_from_db()
    assert freeze.ends_at == NOW
    event = AuditEvent.objects.get(action="freeze.lift")
    assert event.actor == devops_lead and event.data["early"] is True
    assert event.data["ends_at"] == (NOW + dt.timedelta(days=2)).isoformat()
    assert event.data["lift_reason"] == "incident resolved"
    # Over now: nothing left to lift.
    again = api_for(devops_lead).post(url, {"reason": "again"}, format="json")
    assert again.status_code == 409
    # One that has not started is withdrawn.
    later = Freeze.objects.create(
        environment=_env("prod"),
        starts_at=NOW + dt.timedelta(days=1),
        ends_at=NOW + dt.timedelta(days=2),
        reason="later",
    )
    gone = api_for(operations).post(
        f"/api/v1/environments/prod/freezes/{later.pk}/lift/",
        {"reason": "cancelled"},
        format="json",
    )
    assert gone.json() == {"withdrawn": True, "freeze": None}
    assert not Freeze.objects.filter(pk=later.pk).exists()


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@time_machine.travel(NOW, tick=False)
def test_the_environments_page_keeps_the_same_rules(lead: User, operations: User) -> None:
    form = {"starts_at": "2026-11-21T00:00", "ends_at": "2026-11-22T00:00", "reason": "launch"}
    # The form is offered where they may: dev yes, prod no; posting anyway is refused.
    page = _client(lead).get("/environments/").content.decode()
    assert 'id="freeze-form-dev"' in page and 'id="freeze-form-prod"' not in page
    refused = _client(lead).post("/environments/prod/freezes/", form, follow=True)
    assert "prod freezes are declared, changed and lifted by" in refused.content.decode()
    assert not Freeze.objects.exists()
    assert AuditEvent.objects.filter(action="access.refused").exists()
    # Too long: the limit is named.
    ops = _client(operations)
    long = ops.post(
        "/environments/prod/freezes/", {**form, "ends_at": "2026-12-30T00:00"}, follow=True
    )
    assert "at most 14 days" in long.content.decode() and not Freeze.objects.exists()
    ops.post("/environments/prod/freezes/", form)
    freeze = Freeze.objects.get()
    assert freeze.starts_at == dt.datetime(2026, 11, 21, 5, tzinfo=dt.UTC)  # New York time
    page = ops.get("/environments/").content.decode()
    assert f'id="freeze-lift-{freeze.pk}"' in page
    assert (
        f'id="freeze-lift-{freeze.pk}"' not in _client(lead).get("/environments/").content.decode()
    )
    _client(lead).post(f"/environments/prod/freezes/{freeze.pk}/lift/", {"reason": "mine"})
    assert Freeze.objects.filter(pk=freeze.pk).exists()
    ops.post(f"/environments/prod/freezes/{freeze.pk}/lift/", {"reason": "launch moved"})
    assert not Freeze.objects.filter(pk=freeze.pk).exists()
    assert AuditEvent.objects.get(action="freeze.lift").data["withdrawn"] is True


def test_the_admin_keeps_the_limit_and_who_may(lead: User) -> None:
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    data = {
        "environment": _env("prod").pk,
        "starts_at_0": "2026-11-27",
        "starts_at_1": "05:00:00",
        "ends_at_0": "2027-01-27",
        "ends_at_1": "04:00:00",
        "reason": "Holidays",
    }
    response = _client(admin_user).post("/admin/deployments/freeze/add/", data)
    assert response.status_code == 200 and "at most 14 days" in response.content.decode()
    assert not Freeze.objects.exists()
    # A staff Lead Developer with the admin's freeze permissions still may not touch prod's.
    from django.contrib.auth.models import Permission

    lead.is_staff = True
    lead.save()
    lead.user_permissions.set(Permission.objects.filter(codename__endswith="_freeze"))
    freeze = Freeze.objects.create(
        environment=_env("prod"),
        starts_at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
        reason="launch",
    )
    client = _client(lead)
    added = client.post("/admin/deployments/freeze/add/", {**data, "ends_at_0": "2026-11-28"})
    assert added.status_code == 200 and "prod freezes are declared" in added.content.decode()
    assert (
        client.post(f"/admin/deployments/freeze/{freeze.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Freeze.objects.filter(pk=freeze.pk).exists()


@time_machine.travel(NOW, tick=False)
def test_the_input_checks_are_the_services_alone(lead: User, operations: User) -> None:
    """'Ends after it starts' is checked once, by the service, after who may: someone who may
    not declare a prod freeze is refused for who they are, whatever the period; someone who
    may is told what is wrong with it (the API used to check the period first, itself)."""
    inverted = _body(NOW + dt.timedelta(days=2), NOW + dt.timedelta(days=1))
    refused = api_for(lead).post("/api/v1/environments/prod/freezes/", inverted, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("prod freezes are declared, changed and lifted by")
    told = api_for(operations).post("/api/v1/environments/prod/freezes/", inverted, format="json")
    assert told.status_code == 400
    assert told.json() == {
        "detail": "ends_at: a freeze must end after it starts",
        "ends_at": ["a freeze must end after it starts"],
    }
    assert not Freeze.objects.exists()
