"""Machine names as people read them (lib/presentation.py)."""

from __future__ import annotations

import pytest

from deployments.lib.presentation import human_label, role_label


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("smoke_tests", "Smoke tests"),
        ("terraform-validate", "Terraform validate"),
        ("security_scan", "Security scan"),
        ("fmt", "fmt"),
        ("Already Fine", "Already Fine"),
        ("", ""),
    ],
)
def test_human_label(name: str, label: str) -> None:
    assert human_label(name) == label


def test_role_label() -> None:
    assert role_label("tech_lead") == "Tech Lead"
    assert role_label("devops_lead") == "DevOps Lead"
