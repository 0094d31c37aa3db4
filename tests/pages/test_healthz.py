"""/healthz (issue 16, hole 10): strangers read ok/failed per part and nothing else (the
reason goes to the log); storage is checked without writing, on local folders and on S3
(a moto server on loopback); load balancers keep their 200/503."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.test import Client

from changecontrol.settings import plan_storage_config

pytestmark = pytest.mark.django_db


def _local_storages(settings: Any, root: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root / "media")},
        },
        **{
            alias: plan_storage_config(
                bucket="", endpoint_url=None, kms_key_id="", location=root / alias
            )
            for alias in ("plans", "evidence")
        },
    }


def test_a_failure_says_failed_and_logs_why(
    monkeypatch: Any, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from changecontrol.celery import app

    _local_storages(settings, tmp_path)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError('connection to "10.0.0.7", port 6379 refused: role "portal"')

    monkeypatch.setattr(app, "connection_for_write", refuse)
    with caplog.at_level(logging.ERROR):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "failed", "storage": "ok"},
    }
    assert "10.0.0.7" not in response.content.decode()
    assert "portal" not in response.content.decode()
    assert any(
        "health check: broker failed" in r.getMessage() and "10.0.0.7" in (r.exc_text or "")
        for r in caplog.records
    )


def test_local_storage_is_checked_without_writing(settings: Any, tmp_path: Path) -> None:
    _local_storages(settings, tmp_path)
    (tmp_path / "evidence").mkdir()
    for _ in range(3):
        response = Client().get("/healthz")
        assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not (tmp_path / "media").exists()  # not even a folder made for the probe
    # A storage that cannot take files: failed, without saying where.
    (tmp_path / "plans").write_text("a file where the folder should be")
    broken = Client().get("/healthz")
    assert broken.status_code == 503
    assert broken.json()["checks"]["storage"] == "failed"
    assert str(tmp_path) not in broken.content.decode()


def test_s3_is_checked_with_head_bucket_and_nothing_is_written(settings: Any, moto_s3: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.create_bucket(Bucket="portal-files")
    # Versioning keeps every write, even one deleted at once: a probe that writes shows.
    s3.put_bucket_versioning(Bucket="portal-files", VersioningConfiguration={"Status": "Enabled"})
    s3_config = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "portal-files", "endpoint_url": moto_s3},
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_config,
        **{
            alias: plan_storage_config(
                bucket="portal-files", endpoint_url=moto_s3, kms_key_id="", location=Path("x")
            )
            for alias in ("plans", "evidence")
        },
    }
    for _ in range(3):
        response = Client().get("/healthz")
        assert response.status_code == 200, response.json()
    versions = s3.list_object_versions(Bucket="portal-files")
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
    # The bucket is gone: 503, storage failed, and not a word of S3's answer in the body.
    s3.delete_bucket(Bucket="portal-files")
    gone = Client().get("/healthz")
    assert gone.status_code == 503
    assert gone.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "failed"}
    body = gone.content.decode()
    assert "portal-files" not in body and "404" not in body and "Not Found" not in body
