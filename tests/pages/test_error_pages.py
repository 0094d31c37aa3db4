"""Error pages are portal pages: the navigation, a sentence, a way on (404, 403, 500)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from tests.helpers.pages import login

pytestmark = pytest.mark.django_db


def test_404_and_403_pages_have_the_navigation(author: User) -> None:
    client = login(author.username)
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert "<h1>Not found</h1>" in html and 'id="nav-toggle"' in html and "Sign out" in html
    refused = client.get("/notifications/")
    assert refused.status_code == 403
    html = refused.content.decode()
    assert "<h1>Not allowed</h1>" in html and "notification log" in html
    assert 'id="nav-toggle"' in html


def test_the_500_page_renders_without_a_request() -> None:
    html = render_to_string("500.html")
    assert "Something went wrong" in html and 'rel="icon"' in html
