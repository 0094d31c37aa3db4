"""Management commands that operators and CI rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from deployments.models import Approval, Deployment, Stack, TerraformRun, Ticket
from deployments.policy import risk

pytestmark = pytest.mark.django_db

SAMPLE_STACK = Path(__file__).resolve().parents[2] / "sample_stack"


def test_seed_demo_creates_one_account_per_role(settings: Any, capsys: Any) -> None:
    settings.EMBEDDED = True
    call_command("seed_demo")
    out = capsys.readouterr().out
    roles = {
        u.username: sorted(u.groups.values_list("name", flat=True)) for u in User.objects.all()
    }
    assert roles == {
        "dev1": ["developer"],
        "dev2": ["developer"],
        "lead1": ["lead_developer"],
        "techlead1": ["tech_lead"],
        "devopslead1": ["devops_lead"],
        "qa1": ["qa"],
        "ops1": ["operations"],
        "admin": [],
    }
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="dev1").check_password("demo")
    assert "dev1" in out and "techlead1" in out


def test_seed_demo_stacks_declares_the_sample_layers_with_the_app_s_own_policies(
    settings: Any, capsys: Any
) -> None:
    settings.EMBEDDED = True
    call_command("seed_demo", "--stacks")
    call_command("seed_demo", "--stacks")  # again: nothing more
    stacks = {s.name: s for s in Stack.objects.all()}
    assert set(stacks) == {"default", "network", "app"}
    app = stacks["app"]
    assert app.root_dir == "stacks/app" and app.policy_dir == "stacks/app/policies"
    assert [s.name for s in app.depends_on.all()] == ["network"]
    assert stacks["network"].policy_dir == ""
    # The folder it names is the sample's, with its manifest and tests.
    folder = SAMPLE_STACK / app.policy_dir
    assert {p.name for p in folder.iterdir()} >= {
        "manifest.json",
        "app_layer.rego",
        "app_layer_test.rego",
    }
    out = capsys.readouterr().out
    assert "stacks: default, network, app (app depends on network)" in out
    assert "app's own policies: stacks/app/policies" in out


def test_seed_demo_history_respects_the_approval_rules(settings: Any) -> None:
    settings.EMBEDDED = True
    call_command("seed_demo", "--tickets", "40")
    assert Ticket.objects.count() == 40
    for ticket in Ticket.objects.filter(environment__name="prod", deployed_at__isnull=False):
        approvals = Approval.objects.filter(ticket=ticket)
        assert sorted(a.role for a in approvals) == ["devops_lead", "tech_lead"]
        assert ticket.author_id not in {a.approver_id for a in approvals}
        # Filed as the API would take them, and scored below the level that needs a third lead.
        assert risk.clean_risk_assessment(ticket.risk_assessment) == ticket.risk_assessment
        assert risk.clean_rollback_plan(ticket.rollback_plan) == ticket.rollback_plan
        assert ticket.risk["level"] in ("low", "medium")
    # History ends now: nothing seeded happens in the future.
    now = timezone.now()
    assert not TerraformRun.objects.filter(finished_at__gt=now).exists()
    assert not Deployment.objects.filter(finished_at__gt=now).exists()
    assert not Ticket.objects.filter(deployed_at__gt=now).exists()
    call_command("verify_audit")


def test_seed_demo_refuses_a_production_database(settings: Any) -> None:
    settings.EMBEDDED = False
    with pytest.raises(CommandError, match="demo accounts exist only in the local mode"):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_create_api_token_names_an_unknown_user() -> None:
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_seed_demo_stacks_declares_the_two_sample_layers(settings: Any, capsys: Any) -> None:
    """`make run` runs `seed_demo --stacks`: the sample's network and application stacks,
    the application depending on the network, each root in sample_stack/ with its lock file
    and a var-file for every environment (docs/stacks.md)."""
    from deployments.models import AuditEvent, Environment, Stack
    from tests.helpers.paths import ROOT

    settings.EMBEDDED = True
    assert not Stack.objects.exclude(name="default").exists()
    call_command("seed_demo", "--stacks")
    assert "stacks: default, network, app (app depends on network)" in capsys.readouterr().out
    stacks = {s.name: s for s in Stack.objects.prefetch_related("depends_on")}
    assert sorted(stacks) == ["app", "default", "network"]
    assert [s.name for s in stacks["app"].depends_on.all()] == ["network"]
    assert not stacks["network"].depends_on.exists() and not stacks["default"].depends_on.exists()
    for name in ("network", "app"):
        stack = stacks[name]
        assert stack.root_dir == f"stacks/{name}" and stack.require_lock_file
        assert not stack.repository  # the portal's own repository (INFRA_REPO)
        root = ROOT / "sample_stack" / stack.root_dir
        assert (root / ".terraform.lock.hcl").is_file()
        for env in Environment.objects.all():
            assert (root / stack.var_file_for(env.name, env.var_file)).is_file(), (name, env)
    declared = AuditEvent.objects.filter(action="stack.create")
    assert sorted(e.data["stack"] for e in declared) == ["app", "network"]
    assert {e.actor_name for e in declared} == {"seed_demo"}
    assert declared.get(data__stack="app").data["depends_on"] == ["network"]
    # Run again (every `make run`): nothing changes, nothing more is audited.
    events = AuditEvent.objects.filter(action__startswith="stack.").count()
    call_command("seed_demo", "--stacks")
    assert Stack.objects.count() == 3
    assert AuditEvent.objects.filter(action__startswith="stack.").count() == events
    call_command("verify_audit")
