"""The embedded broker: a consumer polling while messages are published reads each one
whole, exactly once (kombu's own filesystem transport can hand it an empty file)."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty
from typing import Any

from kombu import Connection

from changecontrol import broker


def _connection(folder: Path) -> Connection:
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        },
    )


def test_filesystem_means_the_atomic_transport(tmp_path: Path) -> None:
    """Installed by importing the portal's Celery app, in every process."""
    with _connection(tmp_path) as connection:
        assert isinstance(connection.transport, broker.Transport)


def test_a_consumer_polling_during_publishing_reads_every_message_whole(
    tmp_path: Path,
) -> None:
    count = 400
    payload = {"body": "x" * 20_000}  # big enough that a write is not instantaneous
    with _connection(tmp_path) as publisher, _connection(tmp_path) as consumer:
        out, into = publisher.default_channel, consumer.default_channel
        received: list[Any] = []
        errors: list[BaseException] = []
        done = threading.Event()

        def consume() -> None:
            while not (done.is_set() and len(received) == count):
                try:
                    received.append(into._get("portal"))
                except Empty:
                    continue
                except BaseException as exc:  # an empty or partial file
                    errors.append(exc)
                    return

        reader = threading.Thread(target=consume)
        reader.start()
        for n in range(count):
            out._put("portal", {**payload, "n": n})
        done.set()
        reader.join(timeout=60)
        assert not reader.is_alive()
    assert errors == []
    assert sorted(message["n"] for message in received) == list(range(count))
    assert all(message["body"] == payload["body"] for message in received)
    assert not list((tmp_path / "queue").iterdir())  # no partial files left behind
