"""Pages through a real sign-in."""

from __future__ import annotations

from typing import Any

from django.test import Client


def login(username: str) -> Client:
    """A real sign-in (password), which allauth records as a recent authentication."""
    client = Client()
    response = client.post("/accounts/login/", {"login": username, "password": "pw"})
    assert response.status_code == 302, response.content[:500]
    return client


def signed_in(user: Any) -> Client:
    """A session for ``user`` without the sign-in page (pages that ask no recent
    authentication)."""
    client = Client()
    client.force_login(user)
    return client
