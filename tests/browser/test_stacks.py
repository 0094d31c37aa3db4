"""In a real Chromium: the stacks page shows the dependency graph in deployment order, each
stack's last deployment per environment, and links from a dependency to its stack."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from deployments.models import Environment, Stack
from tests.helpers.browser import sign_in
from tests.helpers.factories import DeploymentFactory, TicketFactory
from tests.helpers.stacks import sample_stacks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_graph_shows_layers_and_last_deployments(
    chromium: Browser, live_server: Any, author: User, devops_lead: User
) -> None:
    Stack.default()
    network, _app = sample_stacks(devops_lead)
    staging = Environment.objects.get(name="staging")
    deployment = DeploymentFactory(
        ticket=TicketFactory(environment=staging, stack=network, title="Widen the VPC")
    )
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        base = live_server.url
        sign_in(page, base, "alice")
        page.get_by_role("link", name="Stacks", exact=True).click()
        expect(page.locator("h1")).to_have_text("Stacks")
        layers = page.locator(".stack-layer")
        expect(layers).to_have_count(2)
        expect(layers.nth(0).locator("h3")).to_have_text(["default", "network"])
        expect(layers.nth(1).locator("h3")).to_have_text(["app"])
        table = page.get_by_role("table", name="Last deployment of network per environment")
        row = table.get_by_role("row", name="staging")
        expect(row).to_contain_text(f"#{deployment.ticket_id}")
        expect(row).to_contain_text(deployment.commit_sha[:10])
        expect(table.get_by_role("row", name="dev")).to_contain_text("never deployed")
        app = page.locator("#stack-app")
        app.get_by_role("link", name="network").click()
        expect(page).to_have_url(f"{base}/stacks/#stack-network")
        row.get_by_role("link", name=f"#{deployment.ticket_id}").click()
        expect(page).to_have_url(f"{base}/tickets/{deployment.ticket_id}/")
    finally:
        context.close()
