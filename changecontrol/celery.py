"""The Celery application: workers run every Terraform command."""

import os
from typing import Any

from celery import Celery, signals

from changecontrol.broker import install as install_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
# The embedded broker writes messages atomically (changecontrol/broker.py).
install_broker()

app = Celery("changecontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Whether this worker was started with -Q (then it consumes exactly those queues).
_explicit_queues: list[bool] = []


@signals.celeryd_init.connect
def _note_queues(options: dict[str, Any] | None = None, **_: Any) -> None:
    _explicit_queues.append(bool((options or {}).get("queues")))


@signals.celeryd_after_setup.connect
def _consume_every_environment(instance: Any, **_: Any) -> None:
    """A worker started without -Q (`make run`, a one-host install) runs Terraform for every
    environment; one started with -Q only for the queues it names (docs/workers.md)."""
    if _explicit_queues and _explicit_queues[-1]:
        return
    from deployments.lib.queues import consume_every_environment

    consume_every_environment(instance.app)
