"""Evidence round trips byte for byte over real HTTP, on local files and on S3 (a moto
server on loopback, real boto3), including a 50 MiB file, with the portal's memory bounded:
the upload streams to disk and storage, it is never held whole in memory."""

from __future__ import annotations

import hashlib
import http.client
import os
import tracemalloc
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from deployments.models import Evidence
from tests.helpers.evidence import staging_ticket

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
BIG = 50 * MIB
# The file is 50 MiB; everything the portal (and this client) allocates while it goes up
# and comes back down must stay well under that.
MEMORY_BOUND = 16 * MIB
# On S3: plus boto3's service model per client and one 5 MiB part being sent.
S3_MEMORY_BOUND = 36 * MIB


def _big_file(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(MIB, left))
            sha.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return sha.hexdigest()


def post_streaming(base: str, path: str, token: str, file: Path, kind: str) -> tuple[int, Any]:
    """A multipart upload sent from disk in 1 MiB pieces (as curl or a CI job would)."""
    import json

    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    conn.putrequest("POST", path)
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + file.stat().st_size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with file.open("rb") as source:
        for chunk in iter(lambda: source.read(MIB), b""):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


def download_digest(base: str, path: str, token: str) -> tuple[int, str, int, dict[str, str]]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    sha = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: response.read(MIB), b""):
        sha.update(chunk)
        size += len(chunk)
    headers = dict(response.getheaders())
    conn.close()
    return response.status, sha.hexdigest(), size, headers


def _round_trip(
    live_server: Any, qa: User, author: User, tmp_path: Path, size: int = BIG
) -> tuple[Evidence, int]:
    """Upload a file of ``size`` random bytes and download it again, over HTTP; returns the
    item and the peak memory traced in this process (portal and client) meanwhile."""
    ticket = staging_ticket(author)
    from tests.helpers.keys import new_key

    token = new_key(qa)
    # One small round trip first: modules imported on a first request are not streaming.
    warm = tmp_path / "warm-up.bin"
    _big_file(warm, 1024)
    status, item = post_streaming(
        live_server.url, f"/api/v1/tickets/{ticket.pk}/evidence/", token, warm, "other"
    )
    assert status == 201, item
    download_digest(live_server.url, item["download_url"], token)
    source = tmp_path / "smoke-run.bin"
    digest = _big_file(source, size)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        status, item = post_streaming(
            live_server.url, f"/api/v1/tickets/{ticket.pk}/evidence/", token, source, "other"
        )
        assert status == 201, item
        assert item["size"] == size and item["sha256"] == digest
        status, got, length, headers = download_digest(live_server.url, item["download_url"], token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    source.unlink()
    assert status == 200 and length == size and got == digest
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith('attachment; filename="smoke-run.bin"')
    print(f"{size // MIB} MiB round trip: peak traced memory {peak / MIB:.1f} MiB")
    return Evidence.objects.get(pk=item["id"]), peak


def test_50_mib_round_trip_on_local_storage_with_memory_bounded(
    live_server: Any, qa: User, author: User, tmp_path: Path, settings: Any
) -> None:
    from changecontrol.settings import plan_storage_config

    location = tmp_path / "evidence"
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": plan_storage_config(
            bucket="", endpoint_url=None, kms_key_id="", location=location
        ),
    }
    item, peak = _round_trip(live_server, qa, author, tmp_path)
    assert peak < MEMORY_BOUND, f"peak {peak / MIB:.1f} MiB traced while moving 50 MiB"
    stored = Path(item.file.path)
    assert stored.is_relative_to(location) and stored.stat().st_size == BIG
    assert (stored.stat().st_mode & 0o777) == 0o600


def test_50_mib_round_trip_on_s3_private_and_encrypted(
    live_server: Any, qa: User, author: User, tmp_path: Path, settings: Any, moto_s3: str
) -> None:
    import boto3

    from changecontrol.settings import plan_storage_config

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.create_bucket(Bucket="portal-evidence")
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": plan_storage_config(
            bucket="portal-evidence", endpoint_url=moto_s3, kms_key_id="", location=Path("x")
        ),
    }
    # boto3 loads its S3 service model (about 11 MiB of JSON) for each new client, and the
    # live server answers each request in a new thread with a new client: a constant cost.
    # What must not grow with the file is the rest: compare with a 10 MiB round trip.
    _, small_peak = _round_trip(live_server, qa, author, tmp_path, size=10 * MIB)
    item, peak = _round_trip(live_server, qa, author, tmp_path)
    assert peak < S3_MEMORY_BOUND, f"peak {peak / MIB:.1f} MiB traced while moving 50 MiB"
    assert peak - small_peak < 8 * MIB, (
        f"5x the file took {(peak - small_peak) / MIB:.1f} MiB more memory"
    )
    head = s3.head_object(Bucket="portal-evidence", Key=item.file.name)
    assert head["ContentLength"] == BIG and head["ServerSideEncryption"] == "AES256"
    acl = s3.get_object_acl(Bucket="portal-evidence", Key=item.file.name)
    assert all("AllUsers" not in str(g["Grantee"]) for g in acl["Grants"])


def test_small_file_round_trip_on_s3_through_the_api_checked_against_its_digest(
    qa: User, author: User, settings: Any, moto_s3: str
) -> None:
    import boto3

    from changecontrol.settings import plan_storage_config
    from tests.helpers.api import api_for
    from tests.helpers.evidence import PNG, upload

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.create_bucket(Bucket="portal-evidence")
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": plan_storage_config(
            bucket="portal-evidence", endpoint_url=moto_s3, kms_key_id="", location=Path("x")
        ),
    }
    ticket = staging_ticket(author)
    item = upload(qa, ticket, PNG, name="shot.png", kind="screenshot").json()
    response = api_for(qa).get(item["download_url"])
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    # An object changed in the bucket behind the portal's back is refused, not served.
    key = Evidence.objects.get(pk=item["id"]).file.name
    s3.put_object(Bucket="portal-evidence", Key=key, Body=PNG[:-1] + b"\x00")
    tampered = api_for(qa).get(item["download_url"])
    assert tampered.status_code == 409
    assert "no longer matches the SHA-256" in tampered.json()["detail"]
