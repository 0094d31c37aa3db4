"""Secret redaction for everything Terraform prints before it is stored or shown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"

# Shapes of credentials that must never be stored even when we were not told the value.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(
        r"(?i)(aws_secret_access_key|aws_session_token|secret_key|password|passwd|token|api_key)"
        r"(\s*[=:]\s*\"?)([^\s\"',]{6,})"
    ),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    re.compile(r"(?i)(authorization:\s*(?:token|bearer)\s+)(\S+)"),
    # Terraform 1.x prints a variable's value when a validation rule on it fails.
    re.compile(r"(?i)(var\.\w*(?:password|secret|token|private|key)\w*\s+is\s+\"?)([^\"\s]+)"),
)

# Environment variable names whose values are secrets.
_SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|private|credential|_key$)")


def secret_values_from_env(env: Mapping[str, str]) -> list[str]:
    return [value for name, value in env.items() if _SECRET_NAME.search(name) and value]


class Redactor:
    """Replaces known secret values and credential-shaped strings with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary words; such secrets are not secrets.
        self._secrets.update(s for s in secrets if isinstance(s, str) and len(s) >= 4)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            if pattern.groups >= 2:
                text = pattern.sub(_mask_last_group, text)
            else:
                text = pattern.sub(MASK, text)
        return text


def _mask_last_group(match: re.Match[str]) -> str:
    groups = match.groups()
    return "".join(g or "" for g in groups[:-1]) + MASK
