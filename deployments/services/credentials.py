"""The credentials a Terraform run gets: its environment's, for its phase.

Resolved by the worker when the run starts, from the worker's own configuration: the
credential sets of ``TERRAFORM_CREDENTIALS_FILE`` (read then, so the web process never holds
them and a rotated file needs no restart) and the AWS role the environment names for the
phase, assumed through STS with the worker's own base credentials (boto3's usual chain).
What is resolved goes into ``RunSpec.credentials_env`` only: Terraform's environment for this
one run, masked in its log. Nothing here writes to the database; a failure is a
:class:`CredentialsUnavailable` whose message says why, and the run fails with it: the
worker's own credentials are never used in their place.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from deployments import policy
from deployments.lib.queues import terraform_queue
from deployments.models import Environment
from deployments.terraform.redact import Redactor

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What a credential set may not set: the runner's fixed variables, and what changes which
# binaries or libraries run.
_RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "TF_IN_AUTOMATION",
        "TF_INPUT",
        "CHECKPOINT_DISABLE",
        "TF_CLI_CONFIG_FILE",
        "TF_PLUGIN_CACHE_DIR",
        "TF_DATA_DIR",
        "TF_LOG",
        "TF_LOG_PATH",
    }
)
_STS_KEYS = {
    "AWS_ACCESS_KEY_ID": "AccessKeyId",
    "AWS_SECRET_ACCESS_KEY": "SecretAccessKey",
    "AWS_SESSION_TOKEN": "SessionToken",
}


class CredentialsUnavailable(Exception):
    """The run's credentials cannot be had; the message says why (it holds no secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RunCredentials:
    """What one run gets: ``env`` (secret values) and what its log may say about them."""

    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    role_arn: str = ""
    session_name: str = ""


def _worker() -> str:
    return socket.gethostname()


def _elsewhere(env: Environment) -> str:
    return (
        f"{env.name}'s runs belong on the workers that hold its credentials "
        f"(those consuming queue {terraform_queue(env.name)})"
    )


def credential_sets() -> dict[str, dict[str, str]]:
    """This worker's credential sets, read now from TERRAFORM_CREDENTIALS_FILE ({} unset)."""
    path = settings.TERRAFORM_CREDENTIALS_FILE
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        # The error names the file and the problem, never its content.
        kind = "cannot be read" if isinstance(exc, OSError) else "is not valid JSON"
        raise CredentialsUnavailable(
            f"this worker's TERRAFORM_CREDENTIALS_FILE ({path}) {kind}: {type(exc).__name__}"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsUnavailable(
            f"this worker's TERRAFORM_CREDENTIALS_FILE ({path}) must hold a JSON object of "
            'credential sets: {"prod-plan": {"VARIABLE": "value", ...}, ...}'
        )
    return data


def _credential_set(name: str, env: Environment, phase: str) -> dict[str, str]:
    sets = credential_sets()
    if name not in sets:
        where = (
            f"its TERRAFORM_CREDENTIALS_FILE has no set {name!r}"
            if settings.TERRAFORM_CREDENTIALS_FILE
            else "it has no TERRAFORM_CREDENTIALS_FILE"
        )
        raise CredentialsUnavailable(
            f"this worker ({_worker()}) does not hold the credential set {name!r} that "
            f"{env.name}'s {phase}s get ({where}); the run did not start. {_elsewhere(env)}"
        )
    variables = sets[name]
    if not isinstance(variables, dict):
        raise CredentialsUnavailable(
            f"credential set {name!r} of this worker must be an object of variables"
        )
    for variable, value in variables.items():
        if not isinstance(variable, str) or not _ENV_NAME.match(variable):
            raise CredentialsUnavailable(
                f"credential set {name!r} names a variable that is not one: {variable!r}"
            )
        if variable in _RESERVED or variable.startswith("LD_"):
            raise CredentialsUnavailable(
                f"credential set {name!r} may not set {variable}: the portal sets it"
            )
        if not isinstance(value, str):
            raise CredentialsUnavailable(
                f"credential set {name!r}: the value of {variable} must be a string"
            )
    return dict(variables)


def _assume_role(
    role_arn: str, session_name: str, seconds: int, env: Environment, phase: str
) -> dict[str, str]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # A session of its own: the worker's base credentials are resolved now (rotated keys,
    # an instance role's refresh), not those boto3's default session cached at first use.
    client = boto3.session.Session().client(
        "sts",
        endpoint_url=settings.AWS_ENDPOINT_URL,
        region_name=settings.AWS_DEFAULT_REGION,
        config=Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3}),
    )
    try:
        answer = client.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=seconds
        )
        issued = answer["Credentials"]
        return {name: str(issued[key]) for name, key in _STS_KEYS.items()}
    except (BotoCoreError, ClientError, KeyError) as exc:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            why = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        else:
            why = f"{type(exc).__name__}: {exc}"
        # AWS's messages name principals, not keys; anything shaped like one is masked.
        why = Redactor()(why)
        raise CredentialsUnavailable(
            f"this worker ({_worker()}) could not assume {role_arn} for this {phase} "
            f"(session {session_name}): {why}. The run did not start; no other credentials "
            f"are used in their place. {_elsewhere(env)}"
        ) from None


def run_credentials(env: Environment, *, phase: str, subject: str, timeout: int) -> RunCredentials:
    """The credentials of ``env`` for ``phase`` (policy.PLAN_PHASE or APPLY_PHASE), for one
    run named by ``subject`` (``t123-r456``) that may last ``timeout`` seconds."""
    apply = phase == policy.APPLY_PHASE
    set_name = env.apply_credentials if apply else env.plan_credentials
    role_arn = env.apply_role_arn if apply else env.plan_role_arn
    values: dict[str, str] = {}
    said: list[str] = []
    if set_name:
        values.update(_credential_set(set_name, env, phase))
        said.append(f"credential set {set_name} ({', '.join(sorted(values)) or 'empty'})")
    session_name = ""
    if role_arn:
        session_name = policy.role_session_name(subject, phase)
        seconds = policy.role_session_seconds(timeout, settings.TERRAFORM_ROLE_MAX_SECONDS)
        # The role's short-lived keys replace any AWS keys of the set.
        values.update(_assume_role(role_arn, session_name, seconds, env, phase))
        said.append(f"role {role_arn} as session {session_name} for {seconds} s")
    if not said:
        description = f"none: {env.name} names no credentials for {phase} runs"
    else:
        description = " and ".join(said)
    return RunCredentials(
        env=values,
        description=f"Credentials for this {phase}: {description}",
        role_arn=role_arn,
        session_name=session_name,
    )
