"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

kombu writes a message by creating ``<name>.<queue>.msg`` in the queue folder and then
writing into it; a consumer polling at that instant moves and reads the file before the
bytes are there, and fails on an empty message (the worker's consumer stops; the run
stays queued until the reconciler sends it again). The shorter the polling interval
(``CELERY_BROKER_POLL_MS``), the likelier. Here a message is written under a name no
consumer picks up and renamed into place: a rename within one folder is atomic, so a
consumer sees no file or the whole file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: kombu takes what follows the first dot as the queue ("x.msg.part"
        # is nobody's queue), so the file is invisible until renamed.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """``filesystem://`` means this transport in every process of the portal."""
    TRANSPORT_ALIASES["filesystem"] = "changecontrol.broker:Transport"
