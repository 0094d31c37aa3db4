"""An environment's own policy folder (Environment.policy_dir, docs/policies.md): a folder
inside the repository (an absolute path or a parent reference is refused naming the
field, in the service and the admin form), and the one its runs read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployments import services
from deployments.admin import _ENVIRONMENT_JSON_FIELDS, EnvironmentForm
from deployments.models import AuditEvent, Environment, Stack
from deployments.services.environments import environment_save, environment_validate
from deployments.services.runs.spec import terraform_spec
from deployments.services.stacks import StackInput, stack_save

pytestmark = pytest.mark.django_db

REFUSED = "policy_dir must be a folder inside the repository"


def _form_data(env: Environment, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {field: getattr(env, field) for field in EnvironmentForm._meta.fields}
    for name in _ENVIRONMENT_JSON_FIELDS:
        if name in data:
            data[name] = json.dumps(data[name])
    for name in ("window_start", "window_end"):
        if data[name] is None:
            data[name] = ""
    return {**{k: v for k, v in data.items() if v is not None}, **changes}


@pytest.mark.parametrize(
    "bad", ["/srv/policies", "../shared-policies", "governance/../../policies", ".."]
)
def test_a_policy_folder_outside_the_repository_is_refused_naming_the_field(bad: str) -> None:
    env = Environment.objects.get(name="staging")
    env.policy_dir = bad
    with pytest.raises(services.InputError) as refused:
        environment_validate(env)
    assert (refused.value.field, refused.value.message) == ("policy_dir", REFUSED)
    with pytest.raises(services.InputError):
        environment_save(actor="admin", env=env, changed=["policy_dir"])
    assert Environment.objects.get(name="staging").policy_dir == "policies"  # nothing written
    # The admin form puts the error on the field.
    fresh = Environment.objects.get(name="staging")
    form = EnvironmentForm(data=_form_data(fresh, policy_dir=bad), instance=fresh)
    assert not form.is_valid()
    assert form.errors["policy_dir"] == [REFUSED]


def test_a_custom_policy_folder_is_saved_audited_and_what_runs_read() -> None:
    env = Environment.objects.get(name="staging")
    form = EnvironmentForm(data=_form_data(env, policy_dir="compliance/rego"), instance=env)
    assert form.is_valid(), form.errors
    env.policy_dir = "compliance/rego"
    environment_save(actor="admin", env=env, changed=["policy_dir"])
    event = AuditEvent.objects.get(action="environment.update")
    assert event.data["changes"] == {"policy_dir": {"from": "policies", "to": "compliance/rego"}}
    # Every run in staging reads that folder (and a stack's own beside it).
    spec = terraform_spec(
        environment=env, commit_sha="a" * 40, workspace="staging", var_file="x", timeout=60
    )
    assert (spec.policy_dir, spec.stack_policy_dir) == ("compliance/rego", "")
    app = stack_save(actor="admin", data=StackInput(name="app", policy_dir="stacks/app/policies"))
    spec = terraform_spec(
        environment=env,
        commit_sha="a" * 40,
        workspace="staging",
        var_file="x",
        timeout=60,
        stack=app,
    )
    assert (spec.policy_dir, spec.stack_policy_dir) == ("compliance/rego", "stacks/app/policies")
    # A stack whose own folder is the environment's adds nothing (it is read once).
    same = stack_save(actor="admin", data=StackInput(name="same", policy_dir="compliance/rego/"))
    spec = terraform_spec(
        environment=env,
        commit_sha="a" * 40,
        workspace="staging",
        var_file="x",
        timeout=60,
        stack=same,
    )
    assert (spec.policy_dir, spec.stack_policy_dir) == ("compliance/rego", "")
    # Empty: no repository folder at all.
    env.policy_dir = ""
    environment_save(actor="admin", env=env, changed=["policy_dir"])
    spec = terraform_spec(
        environment=env,
        commit_sha="a" * 40,
        workspace="staging",
        var_file="x",
        timeout=60,
        stack=Stack.default(),
    )
    assert spec.policy_dir == ""
