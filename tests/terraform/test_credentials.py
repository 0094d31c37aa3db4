"""Credentials per environment and per phase (issue 17, item 2).

A run gets its environment's credentials for its phase and nothing else: the credential set
named on the environment (from the worker's TERRAFORM_CREDENTIALS_FILE) and the role it
names, assumed through STS (moto on loopback) with a session naming the ticket and the run.
Plans (and post-apply checks) get the plan ones, applies the apply ones; a dev run never
gets staging's or prod's; the worker's own keys never reach a run; no value reaches a
stored log, an API answer or the database; an assume-role failure fails the run saying why.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from deployments import policy
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import AuditEvent, Environment, RunLogChunk, TerraformRun, Ticket
from deployments.services.credentials import CredentialsUnavailable, run_credentials
from deployments.services.runs.spec import terraform_spec
from tests.helpers.api import api_for
from tests.helpers.aws import (
    WORKER_BASE_KEY,
    WORKER_BASE_SECRET,
    MotoSTS,
    commit_credentials_probe,
    credentials_file,
    probe_terraform,
    role_arn,
    sha256_hex,
)
from tests.helpers.factories import RISK_OK, ROLLBACK_OK
from tests.helpers.flow import drain
from tests.helpers.paths import ROOT

# --- the pure rules ----------------------------------------------------------------------


def test_only_an_apply_is_an_apply_phase() -> None:
    assert policy.run_phase(RunKind.APPLY) == "apply"
    assert {policy.run_phase(k) for k in (RunKind.PLAN, RunKind.CHECK, "drift")} == {"plan"}


@pytest.mark.parametrize(
    ("subject", "phase", "expected"),
    [
        ("t123-r456", "plan", "ccp-t123-r456-plan"),
        ("t1-r2", "apply", "ccp-t1-r2-apply"),
        ("drift7-dev", "plan", "ccp-drift7-dev-plan"),
        ("sp3-prod eu/1", "plan", "ccp-sp3-prod-eu-1-plan"),
    ],
)
def test_a_session_names_what_runs_and_its_phase(subject: str, phase: str, expected: str) -> None:
    assert policy.role_session_name(subject, phase) == expected


def test_a_session_name_always_fits_sts() -> None:
    import re

    name = policy.role_session_name(f"t{10**18}-r{10**18}-" + "x" * 80, "apply")
    assert len(name) <= 64 and re.fullmatch(r"[\w+=,.@-]{2,64}", name)
    assert name.startswith(f"ccp-t{10**18}-r{10**18}") and name.endswith("-apply")


def test_a_session_lasts_the_phase_timeout_within_sts_limits() -> None:
    assert policy.role_session_seconds(1800, 3600) == 2100
    assert policy.role_session_seconds(7200, 3600) == 3600
    assert policy.role_session_seconds(60, 3600) == 900
    assert policy.role_session_seconds(7200, 43200) == 7500


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::123456789012:role/prod-plan",
        "arn:aws:iam::123456789012:role/portal/prod/apply",
        "arn:aws-us-gov:iam::123456789012:role/plan+read=only,x.y@z-1",
        "",
    ],
)
def test_role_arns_that_are_accepted(value: str) -> None:
    assert policy.role_arn_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "prod-plan",
        "arn:aws:iam::12345:role/prod-plan",
        "arn:aws:iam::123456789012:user/prod-plan",
        "arn:aws:sts::123456789012:assumed-role/prod-plan/x",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/bad name",
        "arn:aws:iam::123456789012:role/" + "x" * 65,
        " arn:aws:iam::123456789012:role/prod-plan",
    ],
)
def test_role_arns_that_are_refused(value: str) -> None:
    assert "IAM role ARN" in (policy.role_arn_problem(value) or "")


def test_credential_set_names() -> None:
    assert policy.credential_set_problem("prod-plan") is None
    assert policy.credential_set_problem("") is None
    for bad in ("-x", "a b", "x" * 65, "päss", "../etc"):
        assert policy.credential_set_problem(bad), bad


# --- the environment names them (admin, validated, audited) -------------------------------


def _form_data(env: Environment) -> dict[str, Any]:
    from deployments.admin import _ENVIRONMENT_JSON_FIELDS, EnvironmentForm

    data = {}
    for name in EnvironmentForm._meta.fields or []:
        value = getattr(env, name)
        if name in _ENVIRONMENT_JSON_FIELDS:
            value = json.dumps(value)
        elif value is None:
            value = ""
        data[name] = value
    return data


@pytest.mark.django_db
def test_an_admin_names_credentials_per_phase_and_the_edit_is_audited() -> None:
    from deployments.admin import EnvironmentForm
    from deployments.services.environments import environment_save

    admin = User.objects.create_superuser("root", password="x")
    prod = Environment.objects.get(name="prod")
    data = _form_data(prod) | {
        "plan_role_arn": role_arn("prod-plan"),
        "apply_role_arn": role_arn("prod-apply"),
        "plan_credentials": "prod-plan",
        "apply_credentials": "prod-apply",
    }
    form = EnvironmentForm(data=data, instance=prod)
    assert form.is_valid(), form.errors
    environment_save(actor=admin, env=form.save(commit=False), changed=form.changed_data)
    prod.refresh_from_db()
    assert (prod.plan_role_arn, prod.apply_credentials) == (role_arn("prod-plan"), "prod-apply")
    event = AuditEvent.objects.filter(action="environment.update").latest("id")
    assert event.actor_name == "root"
    assert event.data["changes"]["plan_role_arn"] == {"from": "", "to": role_arn("prod-plan")}
    assert event.data["changes"]["apply_credentials"] == {"from": "", "to": "prod-apply"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"plan_role_arn": "prod-plan"}, "plan_role_arn", "IAM role ARN"),
        ({"apply_role_arn": "arn:aws:iam::1:role/x"}, "apply_role_arn", "IAM role ARN"),
        ({"plan_credentials": "a b"}, "plan_credentials", "credential set name"),
        (
            {"plan_role_arn": role_arn("prod"), "apply_role_arn": role_arn("prod")},
            "plan_role_arn",
            "never the apply's",
        ),
        (
            {"plan_credentials": "prod", "apply_credentials": "prod"},
            "plan_credentials",
            "never the apply's",
        ),
    ],
)
def test_bad_credential_settings_are_refused_and_change_nothing(
    changes: dict[str, str], field: str, says: str
) -> None:
    from deployments.admin import EnvironmentForm

    prod = Environment.objects.get(name="prod")
    form = EnvironmentForm(data=_form_data(prod) | changes, instance=prod)
    assert not form.is_valid()
    assert says in " ".join(form.errors[field])
    prod.refresh_from_db()
    assert (prod.plan_role_arn, prod.plan_credentials) == ("", "")
    assert not AuditEvent.objects.filter(action="environment.update").exists()


# --- the worker resolves them from its own configuration ----------------------------------


@pytest.mark.django_db
def test_a_credential_set_is_read_from_the_workers_file_when_the_run_starts(
    settings: Any, tmp_path: Path
) -> None:
    path, markers = credentials_file(tmp_path, ("dev", "prod"))
    settings.TERRAFORM_CREDENTIALS_FILE = str(path)
    Environment.objects.filter(name="dev").update(
        plan_credentials="dev-plan", apply_credentials="dev-apply"
    )
    dev = Environment.objects.get(name="dev")
    plan = run_credentials(dev, phase="plan", subject="t1-r1", timeout=1800)
    apply = run_credentials(dev, phase="apply", subject="t1-r2", timeout=1800)
    assert plan.env == {"CCP_MARKER": markers["dev-plan"]}
    assert apply.env == {"CCP_MARKER": markers["dev-apply"]}
    assert plan.description == "Credentials for this plan: credential set dev-plan (CCP_MARKER)"
    # Rotated on disk: the next run reads the new value, no restart.
    path.write_text(json.dumps({"dev-plan": {"CCP_MARKER": "rotated-marker-value"}}))
    again = run_credentials(dev, phase="plan", subject="t1-r3", timeout=1800)
    assert again.env == {"CCP_MARKER": "rotated-marker-value"}


@pytest.mark.django_db
def test_an_environment_naming_none_gets_none() -> None:
    granted = run_credentials(
        Environment.objects.get(name="staging"), phase="apply", subject="t1-r1", timeout=60
    )
    assert granted.env == {}
    assert granted.description == (
        "Credentials for this apply: none: staging names no credentials for apply runs"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "it has no TERRAFORM_CREDENTIALS_FILE"),
        ({"dev-plan": {"CCP_MARKER": "x1234"}}, "has no set 'prod-plan'"),
        ("{not json", "is not valid JSON"),
        ([1, 2], "must hold a JSON object"),
        ({"prod-plan": {"PATH": "/tmp/evil"}}, "may not set PATH"),
        ({"prod-plan": {"LD_PRELOAD": "/tmp/evil.so"}}, "may not set LD_PRELOAD"),
        ({"prod-plan": {"A-B": "x"}}, "names a variable that is not one"),
        ({"prod-plan": {"X": 1}}, "must be a string"),
    ],
)
def test_a_worker_without_the_environments_credentials_refuses_saying_why(
    settings: Any, tmp_path: Path, content: Any, says: str
) -> None:
    if content is None:
        settings.TERRAFORM_CREDENTIALS_FILE = ""
    else:
        path = tmp_path / "sets.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        settings.TERRAFORM_CREDENTIALS_FILE = str(path)
    Environment.objects.filter(name="prod").update(plan_credentials="prod-plan")
    with pytest.raises(CredentialsUnavailable) as refused:
        run_credentials(
            Environment.objects.get(name="prod"), phase="plan", subject="t1-r1", timeout=60
        )
    assert says in refused.value.message
    assert "x1234" not in refused.value.message  # names and files, never values


@pytest.mark.django_db
def test_the_workers_own_credentials_are_not_passed_to_runs(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The default passthrough carries region and endpoint, never the worker's keys."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": WORKER_BASE_KEY,
        "AWS_SECRET_ACCESS_KEY": WORKER_BASE_SECRET,
        "AWS_SESSION_TOKEN": "worker-session-token-value",
        "AWS_PROFILE": "worker-profile",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    spec = terraform_spec(
        environment=Environment.objects.get(name="dev"),
        commit_sha="a" * 40,
        workspace="dev",
        var_file="environments/dev/terraform.tfvars",
        timeout=60,
        credentials_env={"CCP_MARKER": "granted"},
    )
    assert spec.passthrough_env["AWS_REGION"] == "eu-west-1"
    assert spec.passthrough_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert set(spec.passthrough_env) <= {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "SSL_CERT_FILE",
    }
    values = set(spec.passthrough_env.values())
    assert not values & {WORKER_BASE_KEY, WORKER_BASE_SECRET, "worker-session-token-value"}
    assert spec.credentials_env == {"CCP_MARKER": "granted"}


@pytest.mark.parametrize(
    "name",
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "ARM_CLIENT_SECRET",
        "DATABASE_URL",
        "SECRET_KEY",
    ],
)
def test_passing_a_credential_through_is_refused_at_start_up(name: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "TERRAFORM_ENV_PASSTHROUGH": f"AWS_REGION,{name}",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "changecontrol.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"TERRAFORM_ENV_PASSTHROUGH: {name} may hold a credential" in result.stderr


# --- STS: a role per environment and phase, a session per run ----------------------------


@pytest.mark.django_db
def test_a_role_is_assumed_with_a_session_naming_the_run(moto_sts: MotoSTS, settings: Any) -> None:
    Environment.objects.filter(name="prod").update(
        plan_role_arn=role_arn("prod-plan"), apply_role_arn=role_arn("prod-apply")
    )
    prod = Environment.objects.get(name="prod")
    granted = run_credentials(prod, phase="apply", subject="t12-r34", timeout=1800)
    [session] = moto_sts.sessions()
    assert (session.role_arn, session.session_name) == (role_arn("prod-apply"), "ccp-t12-r34-apply")
    assert granted.env == {
        "AWS_ACCESS_KEY_ID": session.access_key_id,
        "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
        "AWS_SESSION_TOKEN": session.session_token,
    }
    assert granted.description == (
        f"Credentials for this apply: role {role_arn('prod-apply')} as session "
        "ccp-t12-r34-apply for 2100 s"
    )
    remaining = session.expiration - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(seconds=2100 - 600) < remaining <= dt.timedelta(seconds=2100)


@pytest.mark.django_db
def test_an_assume_role_failure_names_the_role_and_uses_nothing_else(
    moto_sts: MotoSTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = moto_sts.worker_user("dev-worker", role_arn("dev-*"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    moto_sts.enforce_auth()
    Environment.objects.filter(name="prod").update(plan_role_arn=role_arn("prod-plan"))
    Environment.objects.filter(name="dev").update(plan_role_arn=role_arn("dev-plan"))
    with pytest.raises(CredentialsUnavailable) as refused:
        run_credentials(
            Environment.objects.get(name="prod"), phase="plan", subject="t5-r6", timeout=60
        )
    message = refused.value.message
    assert f"could not assume {role_arn('prod-plan')} for this plan (session ccp-t5-r6-plan)" in (
        message
    )
    assert "AccessDenied" in message and "no other credentials are used" in message
    assert "terraform.prod" in message
    assert key not in message and secret not in message
    # The same worker may assume dev's role.
    dev = run_credentials(
        Environment.objects.get(name="dev"), phase="plan", subject="t7-r8", timeout=60
    )
    assert dev.env["AWS_ACCESS_KEY_ID"].startswith("ASIA")


# --- end to end: a dev ticket on the real Terraform binary --------------------------------


def _configure(settings: Any, tmp_path: Path) -> dict[str, str]:
    path, markers = credentials_file(tmp_path, ("dev", "staging", "prod"))
    settings.TERRAFORM_CREDENTIALS_FILE = str(path)
    for env in ("dev", "staging", "prod"):
        Environment.objects.filter(name=env).update(
            plan_credentials=f"{env}-plan",
            apply_credentials=f"{env}-apply",
            plan_role_arn=role_arn(f"{env}-plan"),
            apply_role_arn=role_arn(f"{env}-apply"),
        )
    return markers


def _probe_line(log: str, what: str) -> tuple[str, str]:
    """(key digest, marker digest) of the first probe line of ``what`` in ``log``."""
    import re

    match = re.search(rf"{what} key=([0-9a-f]{{64}}) marker=([0-9a-f]{{64}})", log)
    assert match, f"no {what!r} probe in:\n{log[-3000:]}"
    return match.group(1), match.group(2)


def _everything_stored(ticket: Ticket, viewer: User) -> str:
    """Every place a value could have been kept or shown: logs, chunks, API answers, pages,
    the audit trail, and the whole database as dumpdata sees it."""
    parts = [run.log + run.error for run in TerraformRun.objects.filter(ticket=ticket)]
    parts += list(RunLogChunk.objects.values_list("text", flat=True))
    client = api_for(viewer)
    parts.append(client.get(f"/api/v1/tickets/{ticket.pk}/").content.decode())
    for run in TerraformRun.objects.filter(ticket=ticket):
        parts.append(client.get(f"/api/v1/runs/{run.pk}/").content.decode())
    parts.append(client.get("/api/v1/environments/").content.decode())
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    parts.append(out.getvalue())
    return "\n".join(parts)


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_plans_get_plan_credentials_applies_apply_credentials_and_nothing_else_leaks(
    author: User,
    infra_repo: Path,
    inline: list[int],
    moto_sts: MotoSTS,
    settings: Any,
    tmp_path: Path,
) -> None:
    commit_credentials_probe(infra_repo)
    settings.TERRAFORM_BIN = str(probe_terraform(tmp_path))
    markers = _configure(settings, tmp_path)

    response = api_for(author).post(
        "/api/v1/tickets/", {"title": "Probe", "environment": "dev"}, format="json"
    )
    assert response.status_code == 201, response.json()
    ticket = drain(Ticket.objects.get(pk=response.json()["id"]))
    assert ticket.status == TicketStatus.COMPLETED, ticket.status_reason
    plan, apply, check = ticket.runs.order_by("id")
    assert [r.kind for r in (plan, apply, check)] == ["plan", "apply", "check"]

    # One STS session per run, of its environment's role for its phase, named after it.
    sessions = moto_sts.sessions()
    assert [(s.role_arn, s.session_name) for s in sessions] == [
        (role_arn("dev-plan"), f"ccp-t{ticket.pk}-r{plan.pk}-plan"),
        (role_arn("dev-apply"), f"ccp-t{ticket.pk}-r{apply.pk}-apply"),
        (role_arn("dev-plan"), f"ccp-t{ticket.pk}-r{check.pk}-plan"),
    ]
    plan_session, apply_session, check_session = sessions
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for session, kind in ((plan_session, RunKind.PLAN), (apply_session, RunKind.APPLY)):
        timeout = (
            settings.TERRAFORM_APPLY_TIMEOUT
            if kind == RunKind.APPLY
            else settings.TERRAFORM_PLAN_TIMEOUT
        )
        seconds = policy.role_session_seconds(timeout, settings.TERRAFORM_ROLE_MAX_SECONDS)
        assert session.expiration - now <= dt.timedelta(seconds=seconds)
        assert session.expiration - now > dt.timedelta(seconds=seconds - 900)

    # What each Terraform process received, told by its digest.
    assert _probe_line(plan.log, "probe init") == (
        sha256_hex(plan_session.access_key_id),
        sha256_hex(markers["dev-plan"]),
    )
    assert _probe_line(apply.log, "probe apply") == (
        sha256_hex(apply_session.access_key_id),
        sha256_hex(markers["dev-apply"]),
    )
    assert _probe_line(apply.log, "local-exec probe") == (
        sha256_hex(apply_session.access_key_id),
        sha256_hex(markers["dev-apply"]),
    )
    assert _probe_line(check.log, "probe plan") == (
        sha256_hex(check_session.access_key_id),
        sha256_hex(markers["dev-plan"]),
    )
    # The values themselves are masked where the local-exec printed them.
    assert "local-exec received AWS_ACCESS_KEY_ID=[REDACTED] CCP_MARKER=[REDACTED]" in apply.log
    assert (
        f"Credentials for this plan: credential set dev-plan (CCP_MARKER) and role "
        f"{role_arn('dev-plan')} as session ccp-t{ticket.pk}-r{plan.pk}-plan" in plan.log
    )

    # A plan never saw the apply's credentials, an apply never the plan's; no dev run ever saw
    # staging's or prod's, nor the worker's own keys.
    logs = {"plan": plan.log + check.log, "apply": apply.log}
    never = {
        "plan": [apply_session.access_key_id, markers["dev-apply"]],
        "apply": [plan_session.access_key_id, markers["dev-plan"]],
    }
    elsewhere = [value for name, value in markers.items() if not name.startswith("dev-")]
    for phase, log in logs.items():
        for value in [*never[phase], *elsewhere, WORKER_BASE_KEY, ""]:
            assert sha256_hex(value) not in log, (phase, value[:12])
    assert all(s.role_arn.split("/")[-1].startswith("dev-") for s in sessions)

    # No value anywhere it could have been stored or served.
    stored = _everything_stored(ticket, author)
    secrets = [*markers.values(), WORKER_BASE_KEY, WORKER_BASE_SECRET]
    for session in sessions:
        secrets += [session.access_key_id, session.secret_access_key, session.session_token]
    for value in secrets:
        assert value not in stored, value[:12]


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_role_cannot_be_assumed_fails_before_terraform_starts(
    author: User,
    infra_repo: Path,
    inline: list[int],
    moto_sts: MotoSTS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dev host's base credentials may assume dev's roles only (IAM, enforced by moto):
    a prod plan on that host fails with the reason, and Terraform never starts."""
    key, secret = moto_sts.worker_user("dev-worker", role_arn("dev-*"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    moto_sts.enforce_auth()
    Environment.objects.filter(name="prod").update(plan_role_arn=role_arn("prod-plan"))
    filed = api_for(author).post(
        "/api/v1/tickets/",
        {
            "title": "Prod on a dev host",
            "environment": "prod",
            "description": "misrouted",
            "risk_assessment": RISK_OK,
            "rollback_plan": ROLLBACK_OK,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    ticket = drain(Ticket.objects.get(pk=filed.json()["id"]))
    run = ticket.runs.get()
    assert ticket.status == TicketStatus.PLAN_FAILED
    assert run.status == RunStatus.FAILED and run.exit_code == 1
    expected = (
        f"could not assume {role_arn('prod-plan')} for this plan "
        f"(session ccp-t{ticket.pk}-r{run.pk}-plan): AccessDenied"
    )
    assert expected in ticket.status_reason and expected in run.error
    assert "no other credentials are used in their place" in run.error
    assert "$ terraform" not in run.log
    assert key not in run.log and secret not in run.log and not moto_sts.sessions()
    assert AuditEvent.objects.filter(action="run.finish", ticket=ticket).exists()


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_a_drift_check_gets_the_plan_credentials_of_its_environment(
    author: User, infra_repo: Path, head_sha: str, moto_sts: MotoSTS, settings: Any, tmp_path: Path
) -> None:
    from deployments.services.drift import drift_check_open, drift_check_run
    from tests.helpers.factories import DeploymentFactory, TicketFactory

    markers = _configure(settings, tmp_path)
    settings.TERRAFORM_BIN = str(probe_terraform(tmp_path))
    staging = Environment.objects.get(name="staging")
    DeploymentFactory(
        ticket=TicketFactory(
            environment=staging, author=author, commit_sha=head_sha, status="completed"
        )
    )
    check = drift_check_run(check_id=drift_check_open(staging, requested_by="test").pk)
    assert check.status == "drifted", check.error  # the state is empty: everything differs
    [session] = moto_sts.sessions()
    assert (session.role_arn, session.session_name) == (
        role_arn("staging-plan"),
        f"ccp-drift{check.pk}-staging-plan",
    )
    assert _probe_line(check.log, "probe plan") == (
        sha256_hex(session.access_key_id),
        sha256_hex(markers["staging-plan"]),
    )
    assert sha256_hex(markers["staging-apply"]) not in check.log
    assert markers["staging-plan"] not in check.log and session.access_key_id not in check.log


@pytest.mark.django_db
def test_a_drift_check_without_its_credentials_fails_saying_why(
    author: User, settings: Any, tmp_path: Path
) -> None:
    from deployments.services.drift import drift_check_open, drift_check_run
    from tests.helpers.factories import DeploymentFactory, TicketFactory

    settings.TERRAFORM_CREDENTIALS_FILE = ""
    Environment.objects.filter(name="prod").update(plan_credentials="prod-plan")
    prod = Environment.objects.get(name="prod")
    DeploymentFactory(ticket=TicketFactory(environment=prod, author=author, status="completed"))
    check = drift_check_run(check_id=drift_check_open(prod, requested_by="test").pk)
    assert check.status == "failed" and check.exit_code == 1
    assert "does not hold the credential set 'prod-plan' that prod's plans get" in check.error
    assert "$ terraform" not in check.log
