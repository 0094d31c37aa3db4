"""The review surface's reads: the plan grouped destructive-first, the commit's links,
who can still approve, the timeline's steps, the run page's visibility."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments import selectors
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment
from deployments.selectors.review import commit_review, repository_web_url
from deployments.terraform.summary import read_plan_json
from tests.helpers import plans
from tests.helpers.factories import RunFactory, TicketFactory
from tests.helpers.pages import login
from tests.helpers.review import ticket_under_review
from tests.helpers.users import persona

pytestmark = pytest.mark.django_db


def test_the_plan_is_grouped_destructive_first_with_its_diffs(author: User) -> None:
    ticket = ticket_under_review(author)
    review = selectors.plan_review(ticket.current_plan)
    assert review is not None and review.has_diffs
    assert [(g.action, g.module) for g in review.groups] == [
        ("destroy", ""),
        ("replace", "module.database"),
        ("update", ""),
        ("create", ""),
        ("import", ""),
        ("move", "module.cache"),
    ]
    assert [c.address for c in review.destructive] == [
        "aws_s3_bucket.old_logs",
        "module.database.aws_db_instance.main",
    ]
    db = review.groups[1].changes[0]
    assert db.forced_by == ["engine_version"]
    assert dict(((a, n) for a, _, n in review.counts)) == {
        "destroy": 1,
        "replace": 1,
        "update": 1,
        "create": 1,
        "import": 1,
        "move": 1,
    }


def test_a_forget_is_grouped_under_forget_and_is_not_destructive(author: User) -> None:
    """A `removed` block with `lifecycle { destroy = false }` (Terraform 1.7+) plans a
    "forget": the object leaves the state and keeps running. Real Terraform's plan, beside a
    destroy: the forget has its own group, after destroy, and is not flagged."""
    summary, _ = read_plan_json(io.BytesIO(json.dumps(plans.load("real-mixed")).encode()))
    ticket = TicketFactory(author=author)
    ticket.current_plan = RunFactory(ticket=ticket, summary=summary)
    ticket.save()
    review = selectors.plan_review(ticket.current_plan)
    assert review is not None and review.has_diffs
    assert [(g.action, [c.address for c in g.changes]) for g in review.groups] == [
        ("destroy", ["terraform_data.doomed"]),
        ("forget", ["terraform_data.legacy"]),
        ("update", ["terraform_data.changing"]),
        ("create", ["terraform_data.fresh"]),
        ("import", ["terraform_data.adopted"]),
        ("move", ["null_resource.new_name"]),
    ]
    forget = review.groups[1]
    (legacy,) = forget.changes
    assert forget.action_label == "Forget" and not forget.destructive
    assert legacy.action == "forget" and not legacy.destructive
    assert [c.address for c in review.destructive] == ["terraform_data.doomed"]
    # What it had is listed (the attributes leave the state with it).
    assert {r["path"]: r["before"] for r in legacy.rows}["input"] == '"legacy"'
    # The page: under Forget, outside the destructive box, never "destroyed".
    page = login(author.username).get(f"/tickets/{ticket.pk}/").content.decode()
    box = page[page.index('id="plan-destructive"') :].split("</div>")[0]
    assert "terraform_data.doomed" in box and "terraform_data.legacy" not in box
    item = page[page.index('data-address="terraform_data.legacy"') :].split("</details>")[0]
    assert "destroyed" not in item and 'class="flag"' not in item
    assert 'id="plan-forget-note"' in page


def test_a_plan_without_diffs_lists_its_resources_only(author: User) -> None:
    run = RunFactory(
        ticket=TicketFactory(author=author),
        summary={"add": 1, "resources": [{"address": "a.b", "type": "a", "action": "create"}]},
    )
    review = selectors.plan_review(run)
    assert review is not None and not review.has_diffs
    assert review.groups[0].changes[0].rows == ()


def test_commit_links_follow_the_setting(author: User, settings: Any) -> None:
    ticket = ticket_under_review(author)
    settings.INFRA_REPO_WEB_URL = ""
    settings.GITHUB_REPOSITORY = ""
    assert repository_web_url(ticket) == ""
    bare = commit_review(ticket, ticket.current_plan, author)
    assert bare.commit_url == "" and bare.compare_url == "" and bare.last_deployed_sha
    assert bare.last_deployed_ticket_id is not None  # the author sees the earlier ticket
    settings.GITHUB_REPOSITORY = "acme/infra"
    linked = commit_review(ticket, ticket.current_plan, persona("dora", "developer"))
    assert linked.commit_url == f"https://github.com/acme/infra/commit/{ticket.commit_sha}"
    assert linked.compare_url.startswith("https://github.com/acme/infra/compare/")
    assert linked.last_deployed_ticket_id is None  # a developer does not see prod
    assert linked.subject == "Upgrade the database to PostgreSQL 16"
    assert linked.author == "Alice Example"
    # A stack's own web address wins over the portal-wide one.
    ticket.stack.web_url = "https://git.example.com/acme/network"
    ticket.stack.save()
    ticket.refresh_from_db()
    assert repository_web_url(ticket) == "https://git.example.com/acme/network"
    assert commit_review(ticket, ticket.current_plan, author).commit_url.startswith(
        "https://git.example.com/acme/network/commit/"
    )
    # A stack in a repository of its own without a web address: no links, rather than
    # links into INFRA_REPO's repository, where its commits are not.
    ticket.stack.web_url = ""
    ticket.stack.repository = "https://git.example.com/acme/network.git"
    ticket.stack.save()
    ticket.refresh_from_db()
    assert repository_web_url(ticket) == ""
    assert commit_review(ticket, ticket.current_plan, author).commit_url == ""
    ticket.stack.repository = settings.INFRA_REPO  # named, but INFRA_REPO itself
    ticket.stack.save()
    ticket.refresh_from_db()
    assert repository_web_url(ticket) == "https://github.com/acme/infra"


@pytest.mark.usefixtures("without_promotion_gate")
def test_who_can_still_approve(author: User, tech_lead: User, devops_lead: User) -> None:
    ticket = ticket_under_review(author, tech_lead)
    persona("gone", "devops_lead", is_active=False)
    view = selectors.ticket_view(ticket, devops_lead, timezone.now())
    assert [(a.username, a.roles) for a in view.approvers_needed] == [("otto", "DevOps Lead")]


def test_the_timeline_of_a_failed_plan(author: User) -> None:
    dev = Environment.objects.get(name="dev")
    ticket = TicketFactory(
        environment=dev, author=author, status=TicketStatus.PLAN_FAILED, status_reason="init"
    )
    RunFactory(ticket=ticket, kind=RunKind.PLAN, status=RunStatus.FAILED, error="init failed")
    steps = {s.key: s for s in selectors.ticket_view(ticket, author, timezone.now()).timeline}
    assert steps["planned"].state == "failed" and steps["planned"].detail == "init failed"
    assert steps["approvals"].state == "skipped"
    assert steps["end"].label == "Plan failed" and steps["end"].state == "failed"
    assert "scheduled" not in steps


def test_the_run_page_is_for_those_who_see_the_ticket(author: User, developer: User) -> None:
    ticket = ticket_under_review(author)
    plan = ticket.current_plan
    assert plan is not None
    # A developer does not see prod: the run is not there for them.
    assert login(developer.username).get(f"/runs/{plan.pk}/").status_code == 404
    lead = persona("tina", "tech_lead")
    page = login(lead.username).get(f"/runs/{plan.pk}/").content.decode()
    assert f"Plan run #{plan.pk}" in page and "Plan: 2 to add" in page
