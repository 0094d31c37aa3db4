"""Drift detection: which checks the beat starts, when a check is skipped, what the API and
the environments page show, and their query budgets. The real Terraform check is in
test_rollback_flow.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.choices import DriftStatus, RunKind, RunStatus
from deployments.models import DriftCheck, Environment
from deployments.services import drift
from tests.helpers.api import api_for
from tests.helpers.factories import DeploymentFactory, RunFactory, TicketFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_drift_checks_are_off_everywhere_by_default() -> None:
    assert set(Environment.objects.values_list("drift_check_minutes", flat=True)) == {0}
    assert drift.drift_checks_start(now=T0) == []


def test_the_beat_starts_a_check_when_one_is_due(
    django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(drift, "_dispatcher", lambda pk: lambda: sent.append(pk))
    Environment.objects.filter(name="dev").update(drift_check_minutes=15)
    with django_capture_on_commit_callbacks(execute=True):
        started = drift.drift_checks_start(now=T0)
    assert len(started) == 1 and sent == started
    check = DriftCheck.objects.get()
    assert check.environment.name == "dev" and check.status == DriftStatus.RUNNING
    # Still running, or finished less than 15 minutes ago: nothing new.
    assert drift.drift_checks_start(now=T0 + dt.timedelta(minutes=5)) == []
    DriftCheck.objects.update(
        status=DriftStatus.NO_DRIFT, started_at=T0, finished_at=T0 + dt.timedelta(minutes=1)
    )
    assert drift.drift_checks_start(now=T0 + dt.timedelta(minutes=14)) == []
    assert len(drift.drift_checks_start(now=T0 + dt.timedelta(minutes=15))) == 1


def test_a_lost_check_is_marked_failed(settings: Any) -> None:
    dev = Environment.objects.get(name="dev")
    DriftCheck.objects.create(environment=dev, started_at=T0, status=DriftStatus.RUNNING)
    later = T0 + dt.timedelta(seconds=2 * settings.TERRAFORM_PLAN_TIMEOUT + 120)
    drift.drift_checks_start(now=later)
    assert DriftCheck.objects.get().status == DriftStatus.FAILED


def test_nothing_deployed_is_skipped() -> None:
    check = drift.drift_check_open(Environment.objects.get(name="staging"))
    done = drift.drift_check_run(check_id=check.pk)
    assert done.status == DriftStatus.SKIPPED and "nothing has been deployed" in done.error


def test_never_runs_beside_an_apply(author: User) -> None:
    dev = Environment.objects.get(name="dev")
    DeploymentFactory(ticket=TicketFactory(environment=dev, author=author))
    busy = TicketFactory(environment=dev, author=author)
    RunFactory(
        ticket=busy, kind=RunKind.APPLY, status=RunStatus.QUEUED, plan=RunFactory(ticket=busy)
    )
    check = drift.drift_check_run(check_id=drift.drift_check_open(dev).pk)
    assert check.status == DriftStatus.SKIPPED and "apply of dev" in check.error
    assert check.deployment is not None


def test_the_beat_checks_each_stack_deployed_on_its_own(
    devops_lead: User, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from tests.helpers.stacks import sample_stacks

    monkeypatch.setattr(drift, "_dispatcher", lambda pk: lambda: None)
    network, app = sample_stacks(devops_lead)
    staging = Environment.objects.get(name="staging")
    Environment.objects.filter(name="staging").update(drift_check_minutes=15)
    DeploymentFactory(ticket=TicketFactory(environment=staging, stack=network))
    # Only network is deployed there: only network is checked (not the default stack).
    with django_capture_on_commit_callbacks(execute=True):
        (first,) = drift.drift_checks_start(now=T0 - dt.timedelta(hours=1))
    assert DriftCheck.objects.get(pk=first).stack == network
    DriftCheck.objects.filter(pk=first).update(
        status=DriftStatus.NO_DRIFT,
        started_at=T0 - dt.timedelta(hours=1),
        finished_at=T0 - dt.timedelta(minutes=59),
    )
    DeploymentFactory(ticket=TicketFactory(environment=staging, stack=app))
    # Each stack deployed there is due on its own clock: network's, checked 1 h ago, and
    # app's, never checked.
    with django_capture_on_commit_callbacks(execute=True):
        started = drift.drift_checks_start(now=T0)
    checks = {c.stack.name: c for c in DriftCheck.objects.filter(pk__in=started)}
    assert sorted(checks) == ["app", "network"]
    DriftCheck.objects.filter(pk__in=started).update(
        status=DriftStatus.NO_DRIFT, started_at=T0, finished_at=T0
    )
    assert drift.drift_checks_start(now=T0 + dt.timedelta(minutes=5)) == []
    # A stack that has never been deployed to an environment is skipped there, whatever
    # the others have: its check looks only at its own deployments.
    dev = Environment.objects.get(name="dev")
    DeploymentFactory(ticket=TicketFactory(environment=dev, stack=network))
    skipped = drift.drift_check_run(check_id=drift.drift_check_open(dev, stack=app).pk)
    assert skipped.status == DriftStatus.SKIPPED and skipped.deployment is None
    assert "nothing has been deployed to dev" in skipped.error


def _reports(env: Environment, count: int) -> None:
    deployment = DeploymentFactory(ticket=TicketFactory(environment=env))
    now = timezone.now()
    DriftCheck.objects.bulk_create(
        DriftCheck(
            environment=env,
            stack=deployment.stack,
            deployment=deployment,
            commit_sha=deployment.commit_sha,
            status=DriftStatus.DRIFTED if i % 2 else DriftStatus.NO_DRIFT,
            exit_code=2 if i % 2 else 0,
            summary={"add": 1, "change": 0, "destroy": 0, "resources": []} if i % 2 else {},
            started_at=now - dt.timedelta(minutes=i),
            finished_at=now - dt.timedelta(minutes=i) + dt.timedelta(seconds=30),
        )
        for i in range(count)
    )


@pytest.mark.parametrize("count", [3, 20])
def test_drift_api_and_page_query_budget(
    count: int, operations: User, django_assert_max_num_queries: Any
) -> None:
    for env in Environment.objects.all():
        _reports(env, count)
    client = api_for(operations)
    with django_assert_max_num_queries(10):
        reports = client.get("/api/v1/environments/prod/drift/").json()
    assert len(reports) == min(count, 10)
    assert reports[0]["status"] == "no_drift" and reports[1]["summary"]["add"] == 1
    page = Client()
    page.force_login(operations)
    # The page itself reads freezes per environment (3 queries, before drift existed) plus
    # session, user, roles and preferences; the drift column adds one query, whatever the
    # number of reports.
    with CaptureQueriesContext(connection) as queries:
        html = page.get("/environments/").content.decode()
    drift_queries = [q for q in queries.captured_queries if "deployments_driftcheck" in q["sql"]]
    assert len(drift_queries) == 1 and len(queries.captured_queries) <= 13
    assert 'id="drift-prod"' in html and "No drift" in html


def test_drift_reports_are_404_for_who_cannot_see_the_environment(
    author: User, outsider: User
) -> None:
    _reports(Environment.objects.get(name="prod"), 1)
    # A developer may file in prod but not see its tickets: no drift reports either.
    assert api_for(author).get("/api/v1/environments/prod/drift/").status_code == 404
    assert api_for(outsider).get("/api/v1/environments/prod/drift/").status_code == 404
    assert api_for(author).get("/api/v1/environments/dev/drift/").status_code == 200


def test_the_beat_entry_names_registered_tasks(settings: Any) -> None:
    import deployments.tasks  # noqa: F401 - registers the tasks
    from changecontrol.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["drift-checks"]
    assert entry["schedule"] == 60.0
    assert entry["task"] in app.tasks and "deployments.tasks.drift_check_run" in app.tasks
    # Both run Terraform: routed alike, to their environment's queue (tests/worker/test_queues.py).
    from deployments.lib.queues import TERRAFORM_TASKS

    assert {"deployments.tasks.drift_check_run", "deployments.tasks.run_execute"} <= set(
        TERRAFORM_TASKS
    )
    assert settings.CELERY_TASK_ROUTES == ["deployments.lib.queues.route"]
