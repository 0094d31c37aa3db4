"""Two leads approving at the same instant: both approvals recorded once, one transition.

Runs on the configured database; CI runs it on PostgreSQL, where the row lock taken by
select_for_update is what serialises the two transactions.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments import services
from deployments.choices import TicketStatus
from deployments.models import Approval, AuditEvent, Ticket
from tests.helpers.tickets import awaiting

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("without_promotion_gate"),
]


def _race(*calls: Any) -> list[BaseException | None]:
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException | None] = [None] * len(calls)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            calls[index]()
        except BaseException as exc:
            errors[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.parametrize("attempt", range(5))
def test_two_leads_approving_at_once_approve_the_ticket_exactly_once(
    author: User, tech_lead: User, devops_lead: User, attempt: int
) -> None:
    ticket = awaiting("prod", author)
    reviewed = ticket.current_plan.plan_sha256
    errors = _race(
        lambda: services.approval_grant(ticket_id=ticket.pk, actor=tech_lead, plan_sha256=reviewed),
        lambda: services.approval_grant(
            ticket_id=ticket.pk, actor=devops_lead, plan_sha256=reviewed
        ),
    )
    assert errors == [None, None]
    assert Approval.objects.filter(ticket=ticket).count() == 2
    assert sorted(Approval.objects.values_list("role", flat=True)) == ["devops_lead", "tech_lead"]
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPROVED
    to_approved = AuditEvent.objects.filter(
        ticket=ticket, action="ticket.transition", data__to="approved"
    )
    assert to_approved.count() == 1
    assert services.audit_verify()[0]


def test_one_person_double_submitting_is_recorded_once(author: User, tech_lead: User) -> None:
    ticket = awaiting("prod", author)
    reviewed = ticket.current_plan.plan_sha256
    errors = _race(
        lambda: services.approval_grant(ticket_id=ticket.pk, actor=tech_lead, plan_sha256=reviewed),
        lambda: services.approval_grant(ticket_id=ticket.pk, actor=tech_lead, plan_sha256=reviewed),
    )
    refused = [e for e in errors if e is not None]
    assert len(refused) == 1 and "already approved" in str(refused[0])
    assert Approval.objects.filter(ticket=ticket).count() == 1


CONCURRENT_DEPLOYS = 30


def test_thirty_concurrent_deploy_requests_queue_exactly_one_apply(
    author: User, lead: User, monkeypatch: Any
) -> None:
    """Double clicks, CI retries and racing API calls: one apply, the rest refused (409)."""
    from deployments.choices import RunKind
    from deployments.models import TerraformRun
    from tests.helpers.api import api_for
    from tests.helpers.tickets import approved

    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    ticket = approved("staging", author, lead)
    statuses: list[int] = [0] * CONCURRENT_DEPLOYS

    def deploy(index: int) -> Any:
        def call() -> None:
            response = api_for(author).post(f"/api/v1/tickets/{ticket.pk}/deploy/")
            statuses[index] = response.status_code

        return call

    errors = _race(*(deploy(i) for i in range(CONCURRENT_DEPLOYS)))
    assert errors == [None] * CONCURRENT_DEPLOYS
    applies = TerraformRun.objects.filter(ticket=ticket, kind=RunKind.APPLY).count()
    print(f"{CONCURRENT_DEPLOYS} concurrent deploy requests -> {applies} apply")
    assert applies == 1
    assert sorted(set(statuses)) == [202, 409] and statuses.count(202) == 1
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.APPLYING
    assert services.audit_verify()[0]
