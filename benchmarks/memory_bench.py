"""Memory of a web worker while a 50 MiB evidence file goes up and comes back down: the
peak RSS of the gunicorn worker over its idle RSS (target: a few MiB, the file streams).

One gunicorn worker (one thread) on the embedded SQLite database pages_bench seeds; the
upload is a streamed multipart POST to /api/v1/tickets/{id}/evidence/, the download a GET
of the file, read in 1 MiB pieces. The peak is the kernel's high-water mark (VmHWM), reset
before each transfer through /proc/<pid>/clear_refs.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

from benchmarks import server
from benchmarks.common import Context, Figure
from benchmarks.pages_bench import QUICK_TICKETS

FILE_MIB = 50
TARGET_MIB = 5
CHUNK = 1024 * 1024
BOUNDARY = "benchmark-boundary-7d1f0c"


def _multipart(size: int) -> tuple[int, Iterator[bytes]]:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="kind"\r\n\r\nsmoke_tests\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big-log.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    line = b"0123456789abcdef" * 63 + b"0123456789abcde\n"  # 1 KiB of text

    def body() -> Iterator[bytes]:
        yield head
        piece = line * (CHUNK // len(line))
        left = size
        while left > 0:
            yield piece[: min(left, CHUNK)]
            left -= CHUNK
        yield tail

    return len(head) + size + len(tail), body()


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _upload(port: int, token: str, ticket: int, size: int) -> dict[str, object]:
    length, body = _multipart(size)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(
            "POST",
            f"/api/v1/tickets/{ticket}/evidence/",
            body=body,
            headers={
                "Authorization": f"Token {token}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(length),
            },
        )
        response = conn.getresponse()
        payload = response.read()
        if response.status != 201:
            raise RuntimeError(f"upload answered {response.status}: {payload[:300]!r}")
        result: dict[str, object] = json.loads(payload)
        return result
    finally:
        conn.close()


def _download(port: int, token: str, ticket: int, evidence: object) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(
            "GET",
            f"/api/v1/tickets/{ticket}/evidence/{evidence}/download/",
            headers={"Authorization": f"Token {token}"},
        )
        response = conn.getresponse()
        total = 0
        while piece := response.read(CHUNK):
            total += len(piece)
        if response.status != 200:
            raise RuntimeError(f"download answered {response.status}")
        return total
    finally:
        conn.close()


def run(ctx: Context) -> list[Figure]:
    setup = server.sqlite_setup(ctx, QUICK_TICKETS)
    server.prepare(setup)
    login = server.helper(setup, "login", {"username": "ops1"})
    facts = server.helper(setup, "facts", {})
    ticket, token = facts["open_ticket"], login["token"]
    size = FILE_MIB * 1024 * 1024
    figures: list[Figure] = []
    # Room for the framing: the file itself is exactly FILE_MIB.
    with server.gunicorn(setup, workers=1, threads=1, EVIDENCE_MAX_BYTES=str(size + CHUNK)) as srv:
        (pid,) = srv.workers()
        # Warm-up: the first upload and download import and allocate what every later one
        # reuses; what we measure is what one more 50 MiB file costs.
        warm = _upload(srv.port, token, ticket, 64 * 1024)
        _download(srv.port, token, ticket, warm["id"])
        idle = server.rss_kib(pid)
        _reset_peak(pid)
        item = _upload(srv.port, token, ticket, size)
        up_peak = server.rss_kib(pid, "VmHWM")
        after_up = server.rss_kib(pid)
        _reset_peak(pid)
        got = _download(srv.port, token, ticket, item["id"])
        down_peak = server.rss_kib(pid, "VmHWM")
    for what, peak in (("upload", up_peak), ("download", down_peak)):
        rise = (peak - idle) / 1024
        figures.append(
            Figure(
                f"memory: web worker peak RSS during a {FILE_MIB} MiB evidence {what}",
                f"{peak / 1024:.1f} MiB (+{rise:.1f} MiB)",
                baseline=f"idle {idle / 1024:.1f} MiB",
                ratio=peak / idle if idle else None,
                target=f"rise ≤ {TARGET_MIB} MiB",
                met=rise <= TARGET_MIB,
                note=f"downloaded {got / 1024 / 1024:.1f} MiB"
                if what == "download"
                else f"RSS after the upload {after_up / 1024:.1f} MiB",
            )
        )
    return figures
