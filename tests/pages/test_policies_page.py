"""Rego policy results on the ticket page (Django test client), evaluated by regopy in the
sandbox as the worker does (issue 20): a hard failure is shown with the policy's message
and approving on the page is refused with it; warnings (a policy's `warn` set, an
advisory policy that fails) reach the API and the page's warnings, shown to approvers."""

from __future__ import annotations

import json
import re

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction

from deployments import terraform as tf
from deployments.models import Approval, AuditEvent, Ticket
from deployments.services import policies as service
from deployments.terraform.rego import read_policy_folder
from tests.helpers.api import api_for
from tests.helpers.html import visible_text
from tests.helpers.pages import login
from tests.helpers.policies import POLICIES, aws_plan, change, evaluated
from tests.helpers.tickets import OUTSIDE_WINDOW, awaiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]

UNTAGGED_MESSAGE = (
    "aws_sqs_queue.jobs lacks the tags costcenter, environment, owner, project: every "
    "resource carries project, environment, owner and cost-center"
)
UNTAGGED = aws_plan(change("aws_sqs_queue.jobs", "aws_sqs_queue", ["create"], {"tags": None}))
TAGS = {"Project": "media", "Environment": "prod", "Owner": "platform", "CostCenter": "media-prod"}


def _row(page: str, policy: str) -> str:
    """The policies table's row of ``policy``."""
    found = re.search(rf'<tr id="policy-{policy}"[^>]*>.*?</tr>', page, re.S)
    assert found, f"no row for {policy}"
    return found.group(0)


def test_a_hard_failure_is_shown_on_the_page_and_approving_there_is_refused_with_it(
    author: User, lead: User
) -> None:
    ticket = evaluated(awaiting("staging", author), UNTAGGED)
    client = login("lena")  # a Lead Developer, who may approve staging otherwise
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'data-policy-status="blocked"' in page
    row = _row(page, "tags")
    assert 'data-outcome="fail" data-level="hard"' in row
    assert f'<ul class="policy-messages"><li>{UNTAGGED_MESSAGE}</li></ul>' in row
    assert "Blocks approving and deploying: change the commit." in visible_text(row)
    # Failed first: the tags row comes before every passing one.
    assert page.index('id="policy-tags"') < page.index('id="policy-public_s3"')
    # The approve panel offers no form and says why, with the policy's message.
    assert 'id="approve-form"' not in page
    why = visible_text(re.search(r'<p class="why" id="approve-why">.*?</p>', page, re.S).group(0))
    assert "You cannot approve: the plan is blocked by policy tags (repo, hard) failed:" in why
    assert UNTAGGED_MESSAGE in why
    # Approving through the page anyway (a form kept open): refused with the message.
    response = client.post(
        f"/tickets/{ticket.pk}/approve/",
        {"comment": "ok", "plan_sha256": ticket.current_plan.plan_sha256},
        follow=True,
    )
    shown = visible_text(response.content.decode())
    assert "the plan is blocked by policy tags (repo, hard) failed" in shown
    assert UNTAGGED_MESSAGE in shown
    assert not Approval.objects.exists()
    assert AuditEvent.objects.filter(action="access.refused", ticket=ticket).exists()


WARN_POLICY = """package advice

# Large instances are allowed in prod; approvers are told.
warn contains msg if {
\tsome rc in input.plan.resource_changes
\tstartswith(rc.change.after.instance_type, "m6i.")
\tmsg := concat("", [rc.address, " is ", rc.change.after.instance_type, ": is a t3 enough?"])
}
"""


def test_warnings_reach_the_api_and_the_page(author: User, tech_lead: User) -> None:
    """A Rego `warn` set and an advisory policy that fails (the shipped change_window,
    planned outside prod's window), through regopy: the plan is not blocked, its status is
    `warnings`, and both are shown to an approver."""
    files, manifest = read_policy_folder(POLICIES)
    files["advice.rego"] = WARN_POLICY
    manifest["policies"]["advice"] = {"level": "soft", "environments": ["prod"]}
    plan = aws_plan(
        change(
            "aws_instance.web",
            "aws_instance",
            ["create"],
            {"instance_type": "m6i.large", "tags": TAGS},
        )
    )
    ticket = awaiting("prod", author)
    with time_machine.travel(OUTSIDE_WINDOW, tick=False), transaction.atomic():
        service.policy_input_keep(
            ticket.current_plan,
            tf.PlanResult(
                exit_code=0,
                policy_document=json.dumps(plan).encode(),
                policy_files=tuple(sorted(files.items())),
                policy_manifest=manifest,
            ),
        )
        service.policy_evaluate(ticket, ticket.current_plan)
    ticket = Ticket.objects.get(pk=ticket.pk)
    warning = "aws_instance.web is m6i.large: is a t3 enough?"
    window = (
        "planned at 2026-11-24T07:00:00-05:00 (America/New_York), outside the prod window: "
        "only emergencies change outside it"
    )

    body = api_for(tech_lead).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["policy_status"] == "warnings"
    assert body["policies"]["status"] == "warnings"
    results = {r["policy"]: r for r in body["policies"]["results"]}
    assert (results["advice"]["outcome"], results["advice"]["level"]) == ("warn", "soft")
    assert results["advice"]["warnings"] == [warning] and results["advice"]["messages"] == []
    assert (results["change_window"]["outcome"], results["change_window"]["level"]) == (
        "fail",
        "advisory",
    )
    assert results["change_window"]["messages"] == [window]
    assert body["policies"]["override_needs"] == []
    # Failed first, then warnings, then the passes.
    order = [r["policy"] for r in body["policies"]["results"]]
    assert order[:2] == ["change_window", "advice"]
    assert {r["outcome"] for r in body["policies"]["results"][2:]} == {"pass"}

    page = login("tess").get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'data-policy-status="warnings"' in page
    assert '<strong id="policy-status" class="status status-awaiting_approval">warnings' in page
    advice = _row(page, "advice")
    assert f'<ul class="policy-warnings"><li>warning: {warning}</li></ul>' in advice
    assert "policy-messages" not in advice
    change_window = _row(page, "change_window")
    assert 'data-outcome="fail" data-level="advisory"' in change_window
    assert f'<ul class="policy-messages"><li>{window}</li></ul>' in change_window
    # Neither blocks nor asks an override: the approver may approve (the portal's own
    # window rule decides when it deploys, not the policy).
    assert "Blocks approving" not in advice + change_window
    assert "Needs an override" not in advice + change_window
    assert "policy-need" not in page
    assert 'id="approve-form"' in page
