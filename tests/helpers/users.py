"""People with roles (the personas of conftest.py are made with this)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User

from tests.helpers.factories import UserFactory


def persona(username: str, *roles: str, **extra: Any) -> User:
    user = UserFactory(username=username, **extra)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user
