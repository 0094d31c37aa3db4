"""The ticket pages with several stacks (issue 21): the list's Stack column and ``?stack=``
filter, and the New ticket form's stack choice (required when there are several)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Stack, Ticket
from tests.helpers.factories import TicketFactory
from tests.helpers.pages import signed_in
from tests.helpers.stacks import sample_stacks

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[tuple[int, str]]:
    """(ticket, stack cell) of each row of the list, top to bottom."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        (int(number), stack)
        for number, stack in re.findall(
            r'<td><a href="/tickets/(\d+)/">#\d+</a></td>.*?</td>\s*<td><span class="env[^"]*">'
            r"[^<]*</span></td>\s*<td>([^<]*)</td>",
            body,
            re.S,
        )
    ]


def test_one_stack_shows_no_stack_column_or_filter(author: User) -> None:
    TicketFactory(author=author)
    html = signed_in(author).get("/tickets/").content.decode()
    assert "<th>Stack</th>" not in html and 'name="stack"' not in html


def test_the_list_shows_each_ticket_s_stack_and_filters_by_it(
    author: User, devops_lead: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    network, app = sample_stacks(devops_lead)
    net = [TicketFactory(author=author, stack=network) for _ in range(3)]
    app_ticket = TicketFactory(author=author, stack=app)
    default = TicketFactory(author=author, stack=Stack.default())
    client = signed_in(author)
    html = client.get("/tickets/").content.decode()
    assert "<th>Env</th><th>Stack</th><th>Status</th>" in html
    assert _rows(html) == [
        (default.pk, "default"),
        (app_ticket.pk, "app"),
        *[(t.pk, "network") for t in reversed(net)],
    ]
    assert '<option value="network" >network</option>' in html
    html = client.get("/tickets/?stack=app").content.decode()
    assert _rows(html) == [(app_ticket.pk, "app")]
    assert '<option value="app" selected>app</option>' in html
    # A stack no ticket has lists none; one that could not be a name is ignored.
    assert _rows(client.get("/tickets/?stack=nope").content.decode()) == []
    assert len(_rows(client.get("/tickets/?stack=%00").content.decode())) == 5
    # With the other filters, and kept from page to page.
    from deployments.pages import tickets as ticket_pages

    monkeypatch.setattr(ticket_pages, "TICKETS_PER_PAGE", 2)
    html = client.get("/tickets/?stack=network&environment=dev").content.decode()
    assert [pk for pk, _ in _rows(html)] == [net[2].pk, net[1].pk]
    assert 'href="?environment=dev&amp;stack=network&amp;page=2"' in html
    html = client.get("/tickets/?environment=dev&stack=network&page=2").content.decode()
    assert _rows(html) == [(net[0].pk, "network")]
    assert 'href="?environment=dev&amp;stack=network&amp;page=1"' in html


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deployments.services.runs.start.run_dispatch", lambda run_id: None)


def _form(**fields: Any) -> dict[str, Any]:
    return {"title": "Wider subnets", "environment": "dev", "change_type": "normal", **fields}


def test_the_form_asks_for_a_stack_when_there_are_several(
    author: User, devops_lead: User, head_sha: str, no_dispatch: None
) -> None:
    sample_stacks(devops_lead)
    Stack.objects.filter(name="network").update(description="The network layer.")
    client = signed_in(author)
    html = client.get("/tickets/new/").content.decode()
    field = html.split('id="field-stack"', 1)[1].split("</div>", 1)[0]
    assert '<select name="stack"' in field and "required" in field
    assert '<option value="" selected>Choose a stack</option>' in field
    assert '<option value="network">network: The network layer.</option>' in field
    assert '<option value="app">app</option>' in field
    # Without a stack: the form again, saying so, and nothing filed.
    response = client.post("/tickets/new/", _form())
    assert response.status_code == 200 and not Ticket.objects.exists()
    field = response.content.decode().split('id="field-stack"', 1)[1].split("</div>", 1)[0]
    assert 'class="error"' in field and "This field is required." in field
    assert 'value="Wider subnets"' in response.content.decode()  # the input is kept
    # An unknown stack is refused too.
    response = client.post("/tickets/new/", _form(stack="nope"))
    assert response.status_code == 200 and not Ticket.objects.exists()
    # With one: filed under it.
    response = client.post("/tickets/new/", _form(stack="app"))
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.pk}/"
    assert ticket.stack.name == "app" and ticket.commit_sha == head_sha
    page = client.get(response["Location"]).content.decode()
    assert '<dt>Stack</dt><dd><a href="/stacks/#stack-app">app</a>' in page


def test_with_one_stack_the_form_files_under_it_without_asking(
    author: User, head_sha: str, no_dispatch: None
) -> None:
    only = Stack.default()
    html = signed_in(author).get("/tickets/new/").content.decode()
    assert "Choose a stack" not in html
    response = signed_in(author).post("/tickets/new/", _form())
    assert response.status_code == 302
    assert Ticket.objects.get().stack == only
