"""The API as a signed-in user sees it."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.test import APIClient


def api_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
