"""The API tokens pages without a browser: only one's own keys, bad input is a form error,
creating a key needs a recent sign-in, revoking needs a POST."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import ApiKey, AuditEvent
from tests.helpers.keys import new_key
from tests.helpers.pages import login

pytestmark = pytest.mark.django_db


def test_the_list_shows_only_ones_own_keys_and_never_a_secret(
    author: User, developer: User
) -> None:
    mine = new_key(author, name="my laptop")
    new_key(developer, name="their laptop")
    page = login("alice").get("/settings/tokens/").content.decode()
    assert "my laptop" in page and "their laptop" not in page
    assert ApiKey.objects.get(user=author).prefix in page and mine not in page


def test_someone_elses_key_is_404_and_untouched(author: User, developer: User) -> None:
    new_key(developer, name="theirs")
    theirs = ApiKey.objects.get(user=developer)
    client = login("alice")
    assert client.get(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None


def test_revoking_asks_first_then_revokes_on_post(author: User) -> None:
    new_key(author, name="old")
    key = ApiKey.objects.get(user=author)
    client = login("alice")
    confirm = client.get(f"/settings/tokens/{key.pk}/revoke/")
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert client.post(f"/settings/tokens/{key.pk}/revoke/").status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"name": "", "scope": "ci"}, "name"),
        ({"name": "x", "scope": "root"}, "scope"),
        ({"name": "x", "scope": "ci", "expires_days": "0"}, "expires_days"),
        ({"name": "x\x00y", "scope": "ci"}, "name"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_written(
    author: User, form: dict[str, str], field: str
) -> None:
    response = login("alice").post("/settings/tokens/new/", form)
    assert response.status_code == 200
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.filter(action="account.api_key_create").exists()


def test_the_new_key_is_shown_once_on_the_answer_to_the_post(author: User) -> None:
    client = login("alice")
    response = client.post("/settings/tokens/new/", {"name": "ci", "scope": "ci"})
    assert response.status_code == 200
    key = response.context["key"]
    assert key in response.content.decode()
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert key not in client.get("/settings/tokens/").content.decode()


def test_creating_a_key_needs_a_recent_sign_in(author: User, settings: object) -> None:
    client = login("alice")
    later = timezone.now() + dt.timedelta(hours=2)
    with time_machine.travel(later):
        response = client.post("/settings/tokens/new/", {"name": "ci", "scope": "ci"})
    assert response.status_code == 302 and "/accounts/reauthenticate/" in response["Location"]
    assert not ApiKey.objects.exists()
