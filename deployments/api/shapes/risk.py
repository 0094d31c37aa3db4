"""A ticket's risk (questionnaire, score, blast radius) and rollback plan as the API shows them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments import selectors
from deployments.models import Ticket
from deployments.policy import risk

LEVEL_CHOICES = risk.LEVEL_CHOICES


class BlastItemSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    component = serializers.CharField()
    data_reason = serializers.CharField(
        default="",
        help_text="Why the resource holds data (deployments.policy.data_resources or the "
        "environment's own list); empty when it holds none.",
    )


class BlastMoveSerializer(BlastItemSerializer):
    previous_address = serializers.CharField()


class BlastInvocationSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    component = serializers.CharField()
    trigger = serializers.CharField(
        help_text="The lifecycle event that runs it (after_create, ...), or `invoke`."
    )
    resource = serializers.CharField(help_text="The resource whose event triggers it, if any.")


class BlastRadiusSerializer(serializers.Serializer[Any]):
    components = serializers.ListField(child=serializers.CharField())
    destructive = serializers.BooleanField()
    deletes = BlastItemSerializer(many=True)
    replaces = BlastItemSerializer(many=True)
    delete_count = serializers.IntegerField()
    replace_count = serializers.IntegerField()
    # Scored before these existed: read as none.
    forgets = BlastItemSerializer(many=True, default=list)
    imports = BlastItemSerializer(many=True, default=list)
    moves = BlastMoveSerializer(many=True, default=list)
    invocations = BlastInvocationSerializer(many=True, default=list)
    forget_count = serializers.IntegerField(default=0)
    import_count = serializers.IntegerField(default=0)
    move_count = serializers.IntegerField(default=0)
    invoke_count = serializers.IntegerField(default=0)


class RiskOutSerializer(serializers.Serializer[Any]):
    """The questionnaire (null fields when none was given) and the portal's scoring of it
    with the current plan's blast radius."""

    impact = serializers.ChoiceField(choices=LEVEL_CHOICES, allow_null=True)
    likelihood = serializers.ChoiceField(choices=LEVEL_CHOICES, allow_null=True)
    summary = serializers.CharField(allow_null=True)
    data_migration = serializers.BooleanField(allow_null=True)
    downtime_expected = serializers.BooleanField(allow_null=True)
    customer_facing = serializers.BooleanField(allow_null=True)
    tested_in_staging = serializers.BooleanField(allow_null=True)
    score = serializers.IntegerField(allow_null=True)
    level = serializers.ChoiceField(choices=LEVEL_CHOICES, allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())
    blast_radius = BlastRadiusSerializer(allow_null=True)
    plan_run = serializers.IntegerField(allow_null=True)


class KnownGoodSerializer(serializers.Serializer[Any]):
    ticket = serializers.IntegerField(
        allow_null=True, help_text="Null when the caller may not see the ticket that deployed it."
    )
    commit_sha = serializers.CharField()
    deployed_at = serializers.DateTimeField()


class RollbackOutSerializer(serializers.Serializer[Any]):
    """The rollback plan (null fields when none was given) and the environment's last known
    good deployment, picked by the portal."""

    steps = serializers.CharField(allow_null=True)
    expected_minutes = serializers.IntegerField(allow_null=True)
    data_considerations = serializers.CharField(allow_null=True)
    last_known_good = KnownGoodSerializer(allow_null=True)


def risk_out(ticket: Ticket) -> dict[str, Any]:
    q = ticket.risk_assessment if isinstance(ticket.risk_assessment, dict) else {}
    r = ticket.risk if isinstance(ticket.risk, dict) else {}
    out: dict[str, Any] = {key: q.get(key) for key in risk.RISK_FIELDS}
    out.update(
        score=r.get("score"),
        level=r.get("level"),
        reasons=list(r.get("reasons") or []),
        blast_radius=r.get("blast_radius"),
        plan_run=r.get("plan_run"),
    )
    return out


def rollback_out(ticket: Ticket, good: selectors.KnownGood | None) -> dict[str, Any]:
    """The rollback plan and ``good``, the last known good deployment as the caller sees it."""
    plan = ticket.rollback_plan if isinstance(ticket.rollback_plan, dict) else {}
    return {
        **{key: plan.get(key) for key in risk.ROLLBACK_FIELDS},
        "last_known_good": None
        if good is None
        else {
            "ticket": good.ticket_id,
            "commit_sha": good.commit_sha,
            "deployed_at": good.deployed_at,
        },
    }


class RollbackTargetSerializer(serializers.Serializer[Any]):
    """The deployment a rollback ticket returns its environment to."""

    deployment = serializers.IntegerField(source="pk")
    ticket = serializers.IntegerField(
        source="ticket_id",
        allow_null=True,
        help_text="Null when the caller may not see the ticket that made that deployment.",
    )
    commit_sha = serializers.CharField()
    var_file = serializers.CharField()
    var_file_sha256 = serializers.CharField()
    deployed_at = serializers.DateTimeField(source="finished_at")
