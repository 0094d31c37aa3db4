"""Every sign-in is throttled (the admin's included) and audited, and so are API tokens and
role changes made in /admin/."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from deployments.models import ApiKey, AuditEvent
from deployments.services import audit_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", "right-password")


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- throttling ----------------------------------------------------------------------------


def test_twenty_wrong_admin_passwords_then_the_right_one_does_not_sign_in(root: User) -> None:
    client = Client()
    for _ in range(20):
        client.post(
            "/admin/login/?next=/admin/", {"username": "root", "password": "wrong-password"}
        )
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": "right-password"})
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_admin_login_is_allauths_login(root: User) -> None:
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    # The admin's own password form is never served, so it cannot be brute-forced.
    assert Client().post("/admin/login/", {"username": "root", "password": "x"}).status_code == 302


def test_the_admins_sign_in_is_throttled_after_repeated_failures(root: User) -> None:
    client = Client()
    for _ in range(20):
        client.post("/accounts/login/", {"login": "root", "password": "wrong-password"})
    response = client.post(
        "/accounts/login/?next=/admin/", {"login": "root", "password": "right-password"}
    )
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert not signed_in(client)


def test_a_staff_user_signs_in_to_the_admin_through_allauth(root: User) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/?next=/admin/", {"login": "root", "password": "right-password"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_rate_limit_cache_is_shared_between_processes() -> None:
    """allauth counts failures in Django's cache: production must never use per-process
    memory (gunicorn runs several workers)."""
    import os
    import subprocess
    import sys

    def caches(**env: str) -> Any:
        code = (
            "import json, django; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.CACHES['default']))"
        )
        base = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "REDIS_URL"}}
        base.update(DJANGO_SETTINGS_MODULE="changecontrol.settings", **env)
        out = subprocess.run(
            [sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    redis = caches(CELERY_BROKER_URL="redis://127.0.0.1:6379/5")
    assert redis["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis["LOCATION"] == "redis://127.0.0.1:6379/5"
    files = caches(CELERY_BROKER_URL="filesystem://")
    assert files["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"


# --- audit -----------------------------------------------------------------------------------


def test_sign_ins_and_failed_sign_ins_are_audited_without_the_password(root: User) -> None:
    client = Client(HTTP_USER_AGENT="pytest-browser")
    client.post("/accounts/login/", {"login": "root", "password": "wrong-password"})
    client.post("/accounts/login/", {"login": "ghost\x00", "password": "hunter2-secret"})
    client.post("/accounts/login/", {"login": "root", "password": "right-password"})
    failed = list(AuditEvent.objects.filter(action="account.signin_failed").order_by("id"))
    assert [e.data["username"] for e in failed] == ["root"]
    assert failed[0].actor is None and failed[0].data["ip"] == "127.0.0.1"
    ok = AuditEvent.objects.get(action="account.signin")
    assert ok.actor == root and ok.data["user_agent"] == "pytest-browser"
    everything = json.dumps([e.data for e in AuditEvent.objects.all()])
    assert "wrong-password" not in everything and "right-password" not in everything
    assert "hunter2" not in everything
    assert audit_verify()[0]


def test_a_failed_sign_in_with_a_hostile_name_is_stored_cleanly() -> None:
    from deployments.services.accounts import signin_failure_record

    signin_failure_record(username="a\x00b\udfff" + "x" * 500, request=None)
    event = AuditEvent.objects.get(action="account.signin_failed")
    assert event.data["username"].startswith("ab?") and len(event.data["username"]) <= 150


def test_create_api_token_is_audited(root: User, lead: User) -> None:
    out = io.StringIO()
    call_command("create_api_token", "lena", stdout=out)
    first = out.getvalue().strip()
    key = ApiKey.objects.get(user=lead)
    assert key.digest == hashlib.sha256(first.encode()).hexdigest() and first.startswith(key.prefix)
    call_command("create_api_token", "lena", "--rotate", stdout=io.StringIO())
    events = list(AuditEvent.objects.filter(action__startswith="account.api_key").order_by("id"))
    assert [(e.action, e.data["user"]) for e in events] == [
        ("account.api_key_create", "lena"),
        ("account.api_key_revoke", "lena"),
        ("account.api_key_create", "lena"),
    ]
    assert first not in json.dumps([e.data for e in events])
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_the_admin_cannot_make_plaintext_tokens_but_revokes_keys(root: User, lead: User) -> None:
    client = Client()
    client.force_login(root)
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 404
    call_command("create_api_token", "lena", stdout=io.StringIO())
    key = ApiKey.objects.get(user=lead)
    response = client.post(
        "/admin/deployments/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302, response.content[:500]
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="account.api_key_revoke")
    assert event.actor == root and event.data["prefix"] == key.prefix


def _user_change_data(client: Client, user: User) -> tuple[str, dict[str, Any]]:
    url = f"/admin/auth/user/{user.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    # The inlines' management forms (the GitHub login), as the browser posts them.
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{inline.formset.prefix}-{name}"] = management[name].value()
    for name, field in form.fields.items():
        value = form.initial.get(name)
        if name == "password" or value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        if name in {"groups", "user_permissions"}:
            data[name] = [getattr(v, "pk", v) for v in value]
        elif isinstance(field, forms.SplitDateTimeField):
            data[f"{name}_0"] = value.strftime("%Y-%m-%d")
            data[f"{name}_1"] = value.strftime("%H:%M:%S")
        else:
            data[name] = value
    return url, data


def test_role_changes_on_a_users_admin_page_are_audited(root: User, lead: User) -> None:
    client = Client()
    client.force_login(root)
    url, data = _user_change_data(client, lead)
    tech_lead = Group.objects.get(name="tech_lead")
    response = client.post(url, {**data, "groups": [tech_lead.pk]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(lead.groups.values_list("name", flat=True)) == {"tech_lead"}
    event = AuditEvent.objects.get(action="account.roles_change")
    assert event.actor == root
    assert event.data == {
        "user": "lena",
        "added": ["tech_lead"],
        "removed": ["lead_developer"],
        "via": "admin",
    }
    # Saving without a role change records nothing more.
    url, data = _user_change_data(client, lead)
    client.post(url, data)
    assert AuditEvent.objects.filter(action="account.roles_change").count() == 1


def test_superuser_staff_and_active_changes_on_a_users_admin_page_are_audited(
    root: User, lead: User
) -> None:
    """Superuser status is every role at once (and the admin): granting it is audited like a
    role change, and so are staff access and deactivation."""
    client = Client()
    client.force_login(root)
    url, data = _user_change_data(client, lead)
    assert "is_superuser" not in data and "is_active" in data
    response = client.post(url, {**data, "is_superuser": "on", "is_staff": "on"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert lead.is_superuser and lead.is_staff
    event = AuditEvent.objects.get(action="account.privileges_change")
    assert event.actor == root
    assert event.data == {
        "user": "lena",
        "granted": ["is_staff", "is_superuser"],
        "revoked": [],
        "via": "admin",
    }
    url, data = _user_change_data(client, lead)
    client.post(url, {k: v for k, v in data.items() if k not in {"is_superuser", "is_active"}})
    latest = AuditEvent.objects.filter(action="account.privileges_change").latest("id")
    assert (latest.data["granted"], latest.data["revoked"]) == ([], ["is_active", "is_superuser"])
    # Saving without a change records nothing more.
    url, data = _user_change_data(client, lead)
    client.post(url, data)
    assert AuditEvent.objects.filter(action="account.privileges_change").count() == 2
    assert not AuditEvent.objects.filter(action="account.roles_change").exists()
    assert audit_verify()[0]


def test_adding_and_removing_people_on_a_groups_admin_page_is_audited(
    root: User, lead: User, developer: User
) -> None:
    client = Client()
    client.force_login(root)
    group = Group.objects.get(name="devops_lead")
    url = f"/admin/auth/group/{group.pk}/change/"
    response = client.post(url, {"name": "devops_lead", "users": [lead.pk, developer.pk]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(group.user_set.values_list("username", flat=True)) == {"lena", "dave"}
    client.post(url, {"name": "devops_lead", "users": [developer.pk]})
    events = [
        (e.actor_name, e.data["user"], e.data["added"], e.data["removed"])
        for e in AuditEvent.objects.filter(action="account.roles_change").order_by("id")
    ]
    assert events == [
        ("root", "dave", ["devops_lead"], []),
        ("root", "lena", ["devops_lead"], []),
        ("root", "lena", [], ["devops_lead"]),
    ]


def test_deleting_a_group_in_the_admin_records_each_member_losing_the_role(
    root: User, lead: User
) -> None:
    client = Client()
    client.force_login(root)
    group = Group.objects.create(name="release_managers")
    lead.groups.add(group)
    response = client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Group.objects.filter(name="release_managers").exists()
    event = AuditEvent.objects.get(action="account.roles_change")
    assert (event.actor, event.data["user"], event.data["removed"]) == (
        root,
        "lena",
        ["release_managers"],
    )


def test_deleting_a_user_in_the_admin_records_the_roles_they_lose(root: User) -> None:
    """Someone who never acted can be deleted; the roles that go with them are audited, from
    the user's page and from the list's bulk delete."""
    one = User.objects.create_user("leaver1", password="x" * 12)
    one.groups.add(Group.objects.get(name="tech_lead"), Group.objects.get(name="developer"))
    two = User.objects.create_user("leaver2", password="x" * 12)
    two.groups.add(Group.objects.get(name="qa"))
    client = Client()
    client.force_login(root)
    response = client.post(f"/admin/auth/user/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not User.objects.filter(pk=one.pk).exists()
    event = AuditEvent.objects.filter(action="account.roles_change").latest("id")
    assert event.actor == root
    assert event.data == {
        "user": "leaver1",
        "added": [],
        "removed": ["developer", "tech_lead"],
        "via": "admin delete",
    }
    response = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not User.objects.filter(pk=two.pk).exists()
    latest = AuditEvent.objects.filter(action="account.roles_change").latest("id")
    assert latest.data["user"] == "leaver2" and latest.data["removed"] == ["qa"]
    assert audit_verify()[0]
