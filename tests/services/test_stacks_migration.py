"""The migration to stacks loses nothing: yesterday's tickets, runs, deployments and drift
checks all become the ``default`` stack's, whose blank settings mean today's INFRA_REPO,
INFRA_BRANCH, TERRAFORM_DIR and each environment's var-file."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("deployments", "0032_incident_paths_and_pending_reschedules")]
AFTER = [("deployments", "0033_stacks")]


def test_old_data_becomes_the_default_stack() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Environment = old.get_model("deployments", "Environment")
    Ticket = old.get_model("deployments", "Ticket")
    TerraformRun = old.get_model("deployments", "TerraformRun")
    Deployment = old.get_model("deployments", "Deployment")
    DriftCheck = old.get_model("deployments", "DriftCheck")
    env = Environment.objects.get(name="staging")
    user = User.objects.create(username="old-author")
    now = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    tickets = [
        Ticket.objects.create(
            title=f"Old change {i}",
            environment=env,
            commit_sha=f"{i:040x}",
            author=user,
            status="completed",
        )
        for i in range(3)
    ]
    plan = TerraformRun.objects.create(
        ticket=tickets[0],
        environment=env,
        kind="plan",
        status="succeeded",
        commit_sha=tickets[0].commit_sha,
        workspace="staging",
        var_file="v.tfvars",
    )
    apply = TerraformRun.objects.create(
        ticket=tickets[0],
        environment=env,
        kind="apply",
        status="succeeded",
        plan=plan,
        commit_sha=tickets[0].commit_sha,
        workspace="staging",
        var_file="v.tfvars",
    )
    deployment = Deployment.objects.create(
        environment=env,
        ticket=tickets[0],
        run=apply,
        change_type="normal",
        commit_sha=tickets[0].commit_sha,
        var_file="v.tfvars",
        outcome="succeeded",
        finished_at=now,
    )
    DriftCheck.objects.create(environment=env, deployment=deployment, started_at=now)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Stack = new.get_model("deployments", "Stack")
    default = Stack.objects.get(name="default")
    assert (default.repository, default.branch, default.root_dir, default.var_file_pattern) == (
        "",
        "",
        "",
        "",
    )
    for model, count in (("Ticket", 3), ("TerraformRun", 2), ("Deployment", 1), ("DriftCheck", 1)):
        rows = new.get_model("deployments", model).objects
        assert rows.count() == count, model
        assert set(rows.values_list("stack_id", flat=True)) == {default.pk}, model
    Ticket = new.get_model("deployments", "Ticket")
    assert sorted(Ticket.objects.values_list("title", flat=True)) == [
        "Old change 0",
        "Old change 1",
        "Old change 2",
    ]
    assert Environment.objects.get(name="staging").pk == env.pk
    assert (
        new.get_model("deployments", "Environment").objects.get(pk=env.pk).max_concurrent_applies
        == 1
    )
    # Back to the latest migration for the tests that follow.
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
