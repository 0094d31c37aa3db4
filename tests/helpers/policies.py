"""Policy results made the way the worker makes them: a plan document stored for a plan
run with the sample stack's policies, evaluated by regopy (tests/services, tests/api)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db import transaction

from deployments import terraform as tf
from deployments.models import Ticket
from deployments.services import policies as service
from deployments.terraform.rego import read_policy_folder

POLICIES = Path(__file__).resolve().parents[2] / "sample_stack" / "policies"


def change(address: str, type_: str, actions: list[str], after: Any) -> dict[str, Any]:
    return {
        "address": address,
        "type": type_,
        "mode": "managed",
        "name": address.split(".")[-1],
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions, "before": None, "after": after, "after_sensitive": {}},
    }


def aws_plan(*changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": list(changes),
    }


def evaluated(ticket: Ticket, plan: dict[str, Any]) -> Ticket:
    """Store ``plan`` as the current plan's document with the sample stack's policies, and
    evaluate them as the worker does after a plan."""
    files, manifest = read_policy_folder(POLICIES)
    run = ticket.current_plan
    assert run is not None
    result = tf.PlanResult(
        exit_code=0,
        policy_document=json.dumps(plan).encode(),
        policy_files=tuple(sorted(files.items())),
        policy_manifest=manifest,
    )
    with transaction.atomic():
        service.policy_input_keep(run, result)
        service.policy_evaluate(ticket, run)
    return Ticket.objects.get(pk=ticket.pk)
