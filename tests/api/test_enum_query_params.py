"""Enum query parameters are validated as the schema says (issue 16, "Also"): an empty
value is not one of the enum, so it is a 400 naming the parameter (schemathesis ST201),
never a 200 that quietly means "any"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.helpers.api import api_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/notifications/?status=", "status"),
        ("/api/v1/notifications/?status=nonsense", "status"),
        ("/api/v1/deployments/?outcome=", "outcome"),
        ("/api/v1/deployments/?outcome=maybe", "outcome"),
        ("/api/v1/audit/?format=", "format"),
    ],
)
def test_a_value_outside_the_enum_is_400_naming_the_parameter(
    operations: User, path: str, name: str
) -> None:
    response = api_for(operations).get(path)
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_the_schema_lists_no_empty_value_for_them(operations: User) -> None:
    schema = api_for(operations).get("/api/v1/schema/?format=json").json()
    for path, name in (("/api/v1/notifications/", "status"), ("/api/v1/deployments/", "outcome")):
        (param,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert "" not in param["schema"]["enum"]


def test_the_filters_still_work(operations: User) -> None:
    assert api_for(operations).get("/api/v1/notifications/?status=failed").status_code == 200
    assert api_for(operations).get("/api/v1/notifications/").status_code == 200
    assert api_for(operations).get("/api/v1/deployments/?outcome=succeeded").status_code == 200
