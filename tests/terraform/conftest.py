"""Fixtures of the tests that run Terraform in the test process."""

from __future__ import annotations

from typing import Any

import pytest

from deployments import services


@pytest.fixture
def inline(monkeypatch: Any) -> list[int]:
    """Record dispatches instead of sending them to a broker."""
    sent: list[int] = []
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: sent.append(run_id))
    return sent
