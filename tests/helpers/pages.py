"""Pages through a real sign-in."""

from __future__ import annotations

from django.test import Client


def login(username: str) -> Client:
    """A real sign-in (password), which allauth records as a recent authentication."""
    client = Client()
    response = client.post("/accounts/login/", {"login": username, "password": "pw"})
    assert response.status_code == 302, response.content[:500]
    return client
