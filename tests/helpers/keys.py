"""API keys for tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from deployments.services.apikeys import api_key_create


def new_key(user: User, **options: Any) -> str:
    """A fresh API key for ``user`` (the secret text)."""
    options.setdefault("name", "test")
    return api_key_create(actor="test", user=user, **options)[1]


def keyed(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
