"""Where plan files are kept: the ``plans`` storage (STORAGES["plans"] in settings)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty


class _PlanStorage(LazyObject):
    """STORAGES["plans"], looked up when first used (and again after the setting changes)."""

    def _setup(self) -> None:
        self._wrapped = storages["plans"]


_plan_storage = _PlanStorage()


def plan_storage() -> Storage:
    """The storage of TerraformRun.plan_file: private files, or encrypted private S3 objects."""
    return _plan_storage  # type: ignore[return-value]


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        _plan_storage._wrapped = empty  # type: ignore[assignment]  # LazyObject: "not set up"


class _EvidenceStorage(LazyObject):
    """STORAGES["evidence"], looked up when first used (and again after the setting changes)."""

    def _setup(self) -> None:
        self._wrapped = storages["evidence"]


_evidence_storage = _EvidenceStorage()


def evidence_storage() -> Storage:
    """The storage of Evidence.file: private files, or encrypted private S3 objects."""
    return _evidence_storage  # type: ignore[return-value]


@receiver(setting_changed)
def _reset_evidence(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        _evidence_storage._wrapped = empty  # type: ignore[assignment]
