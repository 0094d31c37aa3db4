"""AWS for the credentials tests: moto's STS, the worker's base keys, and a Terraform and a
resource that report (by SHA-256) which credentials each run received."""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path
from typing import Any

AWS_ACCOUNT = "123456789012"


# The worker's own base credentials: they may call STS, and must never reach a run.
WORKER_BASE_KEY = "AKIAWORKERBASE000001"


WORKER_BASE_SECRET = "worker-base-secret-never-in-a-run-0123456789"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{AWS_ACCOUNT}:role/{name}"


class MotoSTS:
    """moto's STS (and IAM) served over HTTP on loopback, in this process, so a test can
    read which sessions it issued (role, session name, the short-lived keys) to tell what
    each run received."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _post(self, path: str, body: bytes) -> None:
        import urllib.request

        request = urllib.request.Request(
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def reset(self) -> None:
        self._post("/moto-api/reset", b"")
        self._post("/moto-api/reset-auth", b"inf")

    def sessions(self) -> list[Any]:
        """Every session STS issued: ``role_arn``, ``session_name``, ``access_key_id``,
        ``secret_access_key``, ``session_token``, ``expiration`` (naive UTC)."""
        from moto.sts.models import sts_backends

        return list(sts_backends[AWS_ACCOUNT]["aws"].assumed_roles)

    def worker_user(self, name: str, allowed_roles: str) -> tuple[str, str]:
        """An IAM user allowed sts:AssumeRole on ``allowed_roles`` (an ARN pattern) only;
        its access key and secret."""
        import json

        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=WORKER_BASE_KEY,
            aws_secret_access_key=WORKER_BASE_SECRET,
        )
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName="assume",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": allowed_roles}
                    ],
                }
            ),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self) -> None:
        """From now on every request must be signed by a known key and allowed by IAM."""
        self._post("/moto-api/reset-auth", b"0")


def sha256_hex(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


def probe_terraform(tmp_path: Path) -> Path:
    """A `terraform` that first prints (on stderr, so into the run's log) the SHA-256 of the
    AWS_ACCESS_KEY_ID and CCP_MARKER it received, then runs the real one: what every
    Terraform process of a run got, told without telling the values."""
    from deployments.terraform.runner import find_binary

    wrapper = tmp_path / "probe-bin" / "terraform"
    wrapper.parent.mkdir(exist_ok=True)
    digest = '$(printf %s "{0}" | sha256sum | cut -c1-64)'
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "probe %s key=%s marker=%s\\n" "$1" "{digest.format("$AWS_ACCESS_KEY_ID")}" '
        f'"{digest.format("$CCP_MARKER")}" >&2\n'
        f'exec {shlex.quote(find_binary(os.environ.get("TERRAFORM_BIN", "")))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


# A resource whose apply prints what its local-exec received: the values (which the redactor
# must mask) and their SHA-256 (which says whose they were).
CREDENTIALS_PROBE_TF = """
resource "null_resource" "credentials_probe" {
  provisioner "local-exec" {
    command = <<-EOT
      echo "local-exec received AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID CCP_MARKER=$CCP_MARKER"
      key=$(printf %s "$AWS_ACCESS_KEY_ID" | sha256sum | cut -c1-64)
      marker=$(printf %s "$CCP_MARKER" | sha256sum | cut -c1-64)
      echo "local-exec probe key=$key marker=$marker"
    EOT
  }
}
"""


def commit_credentials_probe(repo: Path) -> str:
    """Put the probe resource on main in the infrastructure repository; the new tip."""
    from deployments.terraform.source import commit_all

    (repo / "terraform" / "credentials_probe.tf").write_text(CREDENTIALS_PROBE_TF)
    return commit_all(repo, "Print what the apply's local-exec receives")


def credentials_file(tmp_path: Path, environments: tuple[str, ...]) -> tuple[Path, dict[str, str]]:
    """A TERRAFORM_CREDENTIALS_FILE holding ``<env>-plan`` and ``<env>-apply`` sets, each
    with a distinct CCP_MARKER; the file and each set's marker."""
    import json

    markers = {
        f"{env}-{phase}": f"marker-{env}-{phase}-{uuid.uuid4().hex}"
        for env in environments
        for phase in ("plan", "apply")
    }
    path = tmp_path / f"credentials-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({name: {"CCP_MARKER": value} for name, value in markers.items()}))
    path.chmod(0o600)
    return path, markers
