"""The one document every Rego policy reads as ``input`` (docs/policies.md):
services.policies.policy_input, field by field."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User

from deployments.models import Environment
from deployments.policy import data_resources
from deployments.services.policies import policy_input
from tests.helpers.factories import TicketFactory
from tests.helpers.users import persona

pytestmark = pytest.mark.django_db

PLAN = {"format_version": "1.2", "resource_changes": [{"address": "aws_vpc.main"}]}


@pytest.fixture
def prod() -> Environment:
    env = Environment.objects.get(name="prod")
    env.window_timezone = "America/New_York"
    env.window_days = [2, 4]
    env.window_start = dt.time(1, 0)
    env.window_end = dt.time(5, 30)
    env.data_resource_types = [
        {"type": "aws_custom_store", "why": "the team's own data store"},
        {"address": "module.db.null_resource.main", "why": "stands for the database"},
    ]
    env.save()
    return env


def test_the_input_holds_the_ticket_its_author_the_environment_and_the_time(
    prod: Environment,
) -> None:
    author = persona("rita", "developer", "qa")
    ticket = TicketFactory(
        environment=prod,
        author=author,
        title="Resize the media workers",
        change_type="normal",
        commit_sha="a" * 40,
        risk={"level": "high", "score": 7, "reasons": ["touches data"]},
        risk_assessment={"touches_data": True, "rollback_plan": "restore the snapshot"},
    )
    # Tuesday 07:30 UTC is 02:30 in New York (EST, -05:00), inside the window.
    with time_machine.travel("2026-11-24 07:30:00+00:00", tick=False):
        doc = policy_input(ticket, PLAN)
    assert doc["plan"] == PLAN
    assert doc["ticket"] == {
        "id": ticket.pk,
        "title": "Resize the media workers",
        "environment": "prod",
        "change_type": "normal",
        "emergency": False,
        "risk_level": "high",
        "risk_score": 7,
        "risk_answers": {"touches_data": True, "rollback_plan": "restore the snapshot"},
        "author": {"username": "rita", "roles": ["developer", "qa"]},
        "commit_sha": "a" * 40,
    }
    environment = doc["environment"]
    assert environment["name"] == "prod"
    assert environment["display_name"] == prod.display_name
    assert environment["timezone"] == "America/New_York"
    assert environment["auto_deploy"] is False
    assert environment["window"] == {"days": [2, 4], "start": "01:00:00", "end": "05:30:00"}
    assert "aws_custom_store" in environment["data_resource_types"]
    assert set(data_resources.DATA_RESOURCE_TYPES) <= set(environment["data_resource_types"])
    assert environment["data_resource_types"] == sorted(environment["data_resource_types"])
    assert environment["data_resource_addresses"] == ["module.db.null_resource.main"]
    assert doc["time"] == {
        "utc": "2026-11-24T07:30:00+00:00",
        "local": "2026-11-24T02:30:00-05:00",
        "zone": "America/New_York",
        "date": "2026-11-24",
        "weekday": "tuesday",
        "hour": 2,
        "minute": 30,
    }


def test_the_local_time_follows_the_zone_across_midnight_and_summer_time(
    prod: Environment, author: User
) -> None:
    ticket = TicketFactory(environment=prod, author=author, change_type="emergency")
    # Monday 02:15 UTC in July is Sunday 22:15 in New York (EDT, -04:00).
    with time_machine.travel("2026-07-06 02:15:00+00:00", tick=False):
        doc = policy_input(ticket, None)
    assert doc["plan"] == {}
    assert doc["ticket"]["emergency"] is True and doc["ticket"]["change_type"] == "emergency"
    assert doc["ticket"]["risk_level"] == "" and doc["ticket"]["risk_score"] is None
    assert doc["ticket"]["risk_answers"] == {}
    assert doc["ticket"]["author"] == {"username": "alice", "roles": ["developer"]}
    assert doc["time"]["local"] == "2026-07-05T22:15:00-04:00"
    assert (doc["time"]["date"], doc["time"]["weekday"]) == ("2026-07-05", "sunday")
    assert (doc["time"]["hour"], doc["time"]["minute"]) == (22, 15)


def test_an_unknown_zone_reads_as_utc(prod: Environment, author: User) -> None:
    Environment.objects.filter(pk=prod.pk).update(window_timezone="Mars/Olympus_Mons")
    ticket = TicketFactory(environment=Environment.objects.get(pk=prod.pk), author=author)
    doc = policy_input(ticket, {}, now=dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC))
    assert doc["environment"]["timezone"] == doc["time"]["zone"] == "UTC"
    assert doc["time"]["local"] == "2026-11-24T07:30:00+00:00"
