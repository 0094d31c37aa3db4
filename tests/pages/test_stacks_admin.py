"""Stacks in the admin: declared through the service, so a cycle is a form error naming it
and a change is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import AuditEvent, Stack
from deployments.services.stacks import StackInput, stack_save

pytestmark = pytest.mark.django_db


def test_the_admin_refuses_a_cycle_and_audits_a_change() -> None:
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    network = stack_save(actor=admin, data=StackInput(name="network"))
    app = stack_save(actor=admin, data=StackInput(name="app", depends_on=("network",)))
    form = {
        "description": "",
        "repository": "",
        "repository_credentials": "",
        "webhook_secret_env": "",
        "web_url": "",
        "branch": "",
        "root_dir": "stacks/network",
        "var_file_pattern": "",
        "backend_config": "[]",
        "environment_rules": "{}",
        "depends_on": [str(app.pk)],
    }
    page = client.post(f"/admin/deployments/stack/{network.pk}/change/", form)
    assert page.status_code == 200 and "network → app → network" in page.content.decode()
    assert not Stack.objects.get(pk=network.pk).depends_on.exists()
    page = client.post(f"/admin/deployments/stack/{network.pk}/change/", {**form, "depends_on": []})
    assert page.status_code == 302
    assert Stack.objects.get(pk=network.pk).root_dir == "stacks/network"
    assert AuditEvent.objects.filter(action="stack.update", actor=admin).exists()
