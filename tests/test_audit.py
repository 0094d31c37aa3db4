"""The audit trail is a hash chain: any edit or deletion is found by verify_audit."""

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from deployments import services
from deployments.models import AuditEvent

pytestmark = pytest.mark.django_db


def _events(n: int) -> list[AuditEvent]:
    with transaction.atomic():
        return [
            services.audit_record(actor="system", action=f"test.{i}", data={"i": i})
            for i in range(n)
        ]


def test_verify_audit_accepts_an_intact_chain(capsys: pytest.CaptureFixture[str]) -> None:
    _events(3)
    call_command("verify_audit")
    assert "3 events, chain intact" in capsys.readouterr().out


def test_verify_audit_names_an_altered_event() -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[1].pk).update(data={"i": 99})
    with pytest.raises(CommandError, match=f"event {events[1].pk} \\(test.1\\) was altered"):
        call_command("verify_audit")


def test_verify_audit_notices_a_deleted_event() -> None:
    events = _events(3)
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    with pytest.raises(CommandError, match=f"event {events[2].pk} .* does not link"):
        call_command("verify_audit")


def test_events_link_to_their_predecessor() -> None:
    first, second = _events(2)
    assert first.prev_hash == services.GENESIS_HASH
    assert second.prev_hash == first.hash
