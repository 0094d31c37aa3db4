"""Secret redaction for everything Terraform prints before it is stored or shown."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
# Shorter values would mask ordinary words; such secrets are not secrets.
MIN_SECRET_LENGTH = 4
_MAX_PASSES = 4
# Shorter than any secret, so it cannot contain one.
_STAND_IN = "***"

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
    """Replaces known secret values and credential-shaped strings with a mask.

    Output arrives line by line, so a multi-line secret (a private key, a PEM
    certificate) is registered whole, line by line, and in its escaped one-line
    form (``"a\\nb"``, as Terraform quotes strings): no line of it survives.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if not isinstance(secret, str):
                continue
            forms = {secret, secret.strip(), json.dumps(secret, ensure_ascii=False)[1:-1]}
            forms.update(line.strip() for line in secret.splitlines())
            forms.update(encoded_forms(secret))
            # Very short values would mask ordinary words; such secrets are not secrets.
            self._secrets.update(form for form in forms if len(form) >= MIN_SECRET_LENGTH)

    def __call__(self, text: str) -> str:
        for _ in range(_MAX_PASSES):
            text = self._mask_known(text)
            for pattern in _PATTERNS:
                if pattern.groups >= 2:
                    text = pattern.sub(_mask_last_group, text)
                else:
                    text = pattern.sub(MASK, text)
            if not self._contains_known(text):
                return text
        # A secret that keeps re-forming around the mask itself (it shares the mask's
        # characters): nothing of the text is kept, and no secret fits in the stand-in.
        return _STAND_IN

    def _contains_known(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)

    def _mask_known(self, text: str) -> str:
        """Mask every character covered by any occurrence of any secret, overlaps included
        (replacing one secret after another can leave a piece that forms another)."""
        if not self._contains_known(text):
            return text
        covered = bytearray(len(text))
        for secret in self._secrets:
            start = text.find(secret)
            while start != -1:
                covered[start : start + len(secret)] = b"\x01" * len(secret)
                start = text.find(secret, start + 1)
        out: list[str] = []
        index = 0
        while index < len(text):
            if covered[index]:
                while index < len(text) and covered[index]:
                    index += 1
                out.append(MASK)
            else:
                out.append(text[index])
                index += 1
        return "".join(out)


# An encoded value is matched by the part of its encoding that depends on it alone: at
# least this many characters (shorter parts would mask ordinary words).
_MIN_ENCODED = 8


def encoded_forms(secret: str) -> set[str]:
    """The forms a command could print a secret in to slip past a plain comparison:
    base64 (standard and URL-safe) at each of the three alignments it can start at inside
    a longer encoded text, hex in both cases, and URL-encoding.

    Inside a longer base64 text the secret's bytes start at offset 0, 1 or 2 of a 3-byte
    group; for each, the characters that encode only the secret's own bytes are the same
    whatever surrounds it, so that core is what is masked (its ragged ends are at most two
    characters on each side).
    """
    forms: set[str] = set()
    raw = secret.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Characters before the first full group of the secret's own bytes and after its
        # last one depend on the neighbours.
        first = (shift * 8 + 5) // 6
        last = ((shift + len(raw)) * 8) // 6
        core = encoded[first:last]
        if len(core) >= _MIN_ENCODED:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    if len(raw) * 2 >= _MIN_ENCODED:
        forms.add(raw.hex())
        forms.add(raw.hex().upper())
    for quoted in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        if quoted != secret:
            forms.add(quoted)
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    return forms


def _mask_last_group(match: re.Match[str]) -> str:
    groups = match.groups()
    return "".join(g or "" for g in groups[:-1]) + MASK
