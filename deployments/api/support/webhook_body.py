"""A GitHub delivery's body, read in bounded memory.

GitHub sends up to 25 MB (a push of a large merge lists every commit). The body streams
in chunks to a temporary file (in memory only while small) as its HMAC is computed, so
nothing is held whole; once the signature holds, a streaming JSON parser (ijson, C
backend) walks the document once and keeps only the few fields the portal uses. The
standard `json` module would build the whole document as Python objects first, roughly ten
times the body's size, in every web worker that receives one.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import ijson

CHUNK = 64 * 1024
IN_MEMORY = 1024 * 1024  # a body up to this stays in memory; a larger one goes to disk

# The fields the portal reads, as paths of keys from the top of the document. Keys are
# followed one by one (not ijson's dotted prefixes), so a key that itself holds a dot, or
# a list, never stands in for one of these.
FIELDS: frozenset[tuple[str, ...]] = frozenset(
    tuple(path.split("."))
    for path in (
        "action",
        "after",
        "before",
        "deleted",
        "hook_id",
        "number",
        "ref",
        "zen",
        "head_commit.id",
        "head_commit.message",
        "pusher.name",
        "sender.id",
        "sender.login",
        "repository.id",
        "repository.full_name",
        "pull_request.number",
        "pull_request.html_url",
        "pull_request.title",
        "pull_request.state",
        "pull_request.merged",
        "pull_request.merge_commit_sha",
        "pull_request.user.login",
        "pull_request.head.sha",
    )
)


# A push's changed files (docs/stacks.md): commits[].added/modified/removed, at most this
# many paths kept (past it, or when GitHub cut the list of commits, every stack counts as
# changed).
MAX_CHANGED_FILES = 5000
_CHANGE_LISTS = ("added", "modified", "removed")


class PayloadError(ValueError):
    """The body is not a JSON object the portal can read (the message says why)."""


@dataclass
class Body:
    """What was read: the first ``limit`` bytes (``file``), how many bytes came in all, and
    whether the signature covers exactly those bytes."""

    file: IO[bytes]
    size: int
    signed: bool
    complete: bool  # False: the sender went on past the ceiling; it was not read to the end
    # Which secret signed it: 0 ``secret``, n the n-th of ``other_secrets``; -1 none.
    signed_by: int = -1


@contextmanager
def receive(
    stream: Any,
    *,
    secret: str,
    signature: str,
    limit: int,
    ceiling: int,
    other_secrets: tuple[str, ...] = (),
) -> Iterator[Body]:
    """Read ``stream`` to its end (at most ``ceiling`` bytes), keeping the first ``limit``
    and computing HMAC-SHA256 over all of it; the temporary file goes when the block ends.

    Reading past ``limit`` (up to ``ceiling``) only hashes: a signed delivery over the
    limit can then be recorded as refused, while an unsigned one writes nothing.
    """
    secrets = (secret, *other_secrets)
    macs = [hmac.new(value.encode(), digestmod=hashlib.sha256) for value in secrets]
    size = 0
    complete = True
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
        while chunk := stream.read(CHUNK):
            if size + len(chunk) > ceiling:
                complete = False
                break
            for mac in macs:
                mac.update(chunk)
            if size < limit:
                spool.write(chunk[: limit - size])
            size += len(chunk)
        # Which secret signed it: the repository's, checked against the payload's later.
        signed_by = -1
        for index, (value, mac) in enumerate(zip(secrets, macs, strict=True)):
            expected = "sha256=" + mac.hexdigest()
            matches = hmac.compare_digest(expected.encode(), signature.strip().encode())
            if value and complete and matches and signed_by < 0:
                signed_by = index
        spool.seek(0)
        yield Body(
            file=spool, size=size, signed=signed_by >= 0, complete=complete, signed_by=signed_by
        )


def _scalar(path: tuple[str, ...], value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise PayloadError(f"{'.'.join(path)} holds a NUL character")
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    return None  # a number with a fraction: no field the portal reads is one


def read_fields(file: IO[bytes], *, max_depth: int) -> dict[str, Any]:
    """The document's FIELDS as nested dicts (absent ones left out), after checking that
    the whole body is one JSON object nested at most ``max_depth`` deep."""
    found: dict[str, Any] = {}
    path: list[Any] = []  # a key per open object; ARRAY for an open list
    events = ijson.parse(file, use_float=True)
    try:
        for _prefix, event, value in events:
            if event == "map_key":
                path[-1] = value
            elif event in ("start_map", "start_array"):
                if not path and event != "start_map":
                    raise PayloadError("the body must be a JSON object")
                if len(path) >= max_depth:
                    raise PayloadError(f"JSON is nested deeper than {max_depth} levels")
                if event == "start_map" and len(path) == 2 and path[0] == "commits":
                    found["commit_count"] = found.get("commit_count", 0) + 1
                path.append(None if event == "start_map" else _ARRAY)
            elif event in ("end_map", "end_array"):
                path.pop()
            elif not path:
                raise PayloadError("the body must be a JSON object")
            elif (
                event == "string"
                and len(path) == 4
                and path[0] == "commits"
                and path[2] in _CHANGE_LISTS
                and path[1] is _ARRAY
                and path[3] is _ARRAY
            ):
                changed = found.setdefault("changed_files", [])
                if len(changed) < MAX_CHANGED_FILES and "\x00" not in value:
                    changed.append(value)
                else:
                    found["changed_files_truncated"] = True
            elif tuple(path) in FIELDS:
                key = tuple(path)
                node = found
                for part in key[:-1]:
                    node = node.setdefault(part, {})
                node[key[-1]] = _scalar(key, value)
    except ijson.JSONError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "not JSON"
        raise PayloadError(f"JSON parse error - {first_line}") from None
    return found


class _Array:
    """The marker of a list on the path: no field lies inside one."""


_ARRAY = _Array()
