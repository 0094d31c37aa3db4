"""File uploads stream to disk and stop at EVIDENCE_MAX_BYTES (settings.FILE_UPLOAD_HANDLERS).

Django parses a multipart body the first time anything reads ``request.POST`` or
``request.FILES`` (the CSRF check does, before any view runs), so the limit lives in the
upload handler every parse uses, not in a view. A file over the limit is not kept: the
handler stops the upload, the partial temporary file is deleted, and it marks the request;
the upload views see the mark (``refusal``) and answer 413. A body whose declared length
could not fit even the largest allowed upload is refused before a byte of it is read.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

# Room for the multipart framing and the small form fields around the files.
FORM_OVERHEAD_BYTES = 1024 * 1024
_MARK = "_portal_upload_refused"


def max_body_bytes() -> int:
    """The largest multipart body worth reading: every allowed file at its largest."""
    files: int = settings.EVIDENCE_MAX_FILES
    return int(settings.EVIDENCE_MAX_BYTES) * files + FORM_OVERHEAD_BYTES


def limit_text() -> str:
    """The limit as people read it."""
    limit: int = settings.EVIDENCE_MAX_BYTES
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit} bytes"


def refusal(request: HttpRequest) -> str | None:
    """Why the upload handler refused this request's files, or None."""
    reason: str | None = getattr(request, _MARK, None)
    return reason


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Each file goes to a temporary file (never memory); one over the limit is dropped."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict[str, Any]] | None:
        if content_length > max_body_bytes():
            self._refuse(f"the upload is larger than allowed (each file at most {limit_text()})")
            # Parse nothing: the view answers 413 without reading the body.
            return QueryDict(), MultiValueDict()
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.EVIDENCE_MAX_BYTES:
            name = getattr(self, "file_name", "") or "a file"
            self._refuse(f"{name} is larger than the {limit_text()} limit for evidence files")
            self.file.close()  # a NamedTemporaryFile: closing deletes the partial copy
            # Read (and discard) the rest of the body so the client gets the answer.
            raise StopUpload(connection_reset=False)
        super().receive_data_chunk(raw_data, start)
        return None

    def _refuse(self, reason: str) -> None:
        if self.request is not None and not hasattr(self.request, _MARK):
            setattr(self.request, _MARK, reason)


# --- what an uploaded file is, whatever its name says ------------------------------------

FILENAME_MAX = 200
SNIFF_BYTES = 8192
# Served inline with their sniffed type; everything else is an attachment.
INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)
_MARKUP = (b"<!doctype", b"<html", b"<script", b"<svg", b"<?xml", b"<head", b"<body", b"<iframe")


def safe_filename(name: str) -> str:
    """The client's file name without any path, control characters or leading dots, bounded."""
    import unicodedata

    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        c for c in base if unicodedata.category(c)[0] != "C" and c not in '"<>|*?:'
    ).strip()
    base = base.lstrip(".").strip() or "upload"
    if len(base) > FILENAME_MAX:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:16] if dot and len(ext) <= 16 else ""
        base = (stem if ext else base)[: FILENAME_MAX - len(ext) - 1].rstrip() + (
            f".{ext}" if ext else ""
        )
    return base


def sniff_content_type(head: bytes) -> str:
    """The type the bytes say they are (``filetype`` magic numbers; markup and text by
    content), never what the client or the file name claims."""
    import filetype

    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if probe.startswith(b"<"):
        return "image/svg+xml" if b"<svg" in probe else "text/html"
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed bytes is still text.
        if exc.start < len(head) - 4:
            return "application/octet-stream"
    if any(tag in probe for tag in _MARKUP):
        return "text/html"
    return "text/plain"


def served_inline(content_type: str) -> bool:
    """Images, PDF and plain text open in the browser; HTML, SVG and the rest download."""
    return content_type in INLINE_TYPES
