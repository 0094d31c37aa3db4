"""Portal-managed policies in the admin: each save a new version with its SHA-256, audited;
a source that does not declare its package is a form error and changes nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import AuditEvent, PortalPolicy

pytestmark = pytest.mark.django_db

SOURCE = 'package portal.tags\n\ndeny contains "no" if input.plan.nope\n'


def _post(client: Client, url: str, **fields: str) -> object:
    data = {
        "name": "portal.tags",
        "description": "",
        "source": SOURCE,
        "level": "hard",
        "environments": '["prod"]',
        "override_role": "",
        "enabled": "on",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **fields,
    }
    return client.post(url, data)


def test_admin_saves_are_versions_with_their_digest_and_audited(db: None) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    refused = _post(client, "/admin/deployments/portalpolicy/add/", source="package other\n")
    assert refused.status_code == 200  # the form again, with its error
    assert "must declare `package portal.tags`" in refused.content.decode()  # type: ignore[attr-defined]
    assert not PortalPolicy.objects.exists()
    added = _post(client, "/admin/deployments/portalpolicy/add/")
    assert added.status_code == 302  # type: ignore[attr-defined]
    item = PortalPolicy.objects.get()
    assert item.source == SOURCE.strip()  # as the form keeps it
    assert (item.version, item.sha256) == (1, hashlib.sha256(item.source.encode()).hexdigest())
    changed = _post(
        client, f"/admin/deployments/portalpolicy/{item.pk}/change/", level="soft", enabled=""
    )
    assert changed.status_code == 302  # type: ignore[attr-defined]
    item.refresh_from_db()
    assert item.version == 2 and item.level == "soft" and not item.enabled
    versions = list(item.versions.values_list("version", "level", "enabled"))
    assert versions == [(2, "soft", False), (1, "hard", True)]
    events = AuditEvent.objects.filter(action="policy.portal_save").order_by("id")
    assert [(e.actor_id, e.data["version"]) for e in events] == [(root.pk, 1), (root.pk, 2)]
