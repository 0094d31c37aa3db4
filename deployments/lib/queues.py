"""Celery queues: the portal's own, and one Terraform queue per environment.

Every task that runs Terraform carries the id of a row that names its environment (a run, a
drift check, a speculative plan); :func:`route` sends it to that environment's queue,
``terraform.<environment>`` (with ``CELERY_QUEUE_PREFIX``). A worker consumes only the
queues it is given with ``-Q``, so prod's workers can run on hosts that alone hold prod's
credentials; a worker started without ``-Q`` consumes every queue (docs/workers.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


def terraform_queue(environment: str) -> str:
    """The queue of ``environment``'s Terraform work, e.g. ``terraform.prod``."""
    return f"{settings.CELERY_TERRAFORM_QUEUE}.{environment}"


def worker_queues(environments: Iterable[str], *, portal: bool = False) -> list[str]:
    """The -Q list of a worker running Terraform for ``environments`` (and, with
    ``portal``, the portal's own tasks: webhooks, notifications, beat's passes)."""
    names = [settings.CELERY_TASK_DEFAULT_QUEUE] if portal else []
    return names + [terraform_queue(name) for name in environments]


def _run_environment(pk: Any) -> str | None:
    from deployments.models import TerraformRun

    return TerraformRun.objects.filter(pk=pk).values_list("environment__name", flat=True).first()


def _drift_environment(pk: Any) -> str | None:
    from deployments.models import DriftCheck

    return DriftCheck.objects.filter(pk=pk).values_list("environment__name", flat=True).first()


def _plan_environment(pk: Any) -> str | None:
    from deployments.models import SpeculativePlan

    return SpeculativePlan.objects.filter(pk=pk).values_list("environment__name", flat=True).first()


# The tasks that run Terraform, and how each finds its environment from its first argument.
TERRAFORM_TASKS: dict[str, Callable[[Any], str | None]] = {
    "deployments.tasks.run_execute": _run_environment,
    "deployments.tasks.drift_check_run": _drift_environment,
    "deployments.tasks.speculative_plan_run": _plan_environment,
}


def route(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any
) -> dict[str, str] | None:
    """Celery router (CELERY_TASK_ROUTES): Terraform tasks to their environment's queue.

    A task whose row is gone is left to the default queue: the task finds nothing to do.
    """
    lookup = TERRAFORM_TASKS.get(name)
    if lookup is None:
        return None
    pk = args[0] if args else next(iter((kwargs or {}).values()), None)
    environment = lookup(pk) if pk is not None else None
    if environment is None:
        return None
    return {"queue": terraform_queue(environment)}


def consume_every_environment(app: Any) -> list[str]:
    """For a worker started without -Q: also consume each environment's Terraform queue
    (read from the database when the worker starts; a new environment needs a restart)."""
    from deployments.models import Environment

    added = []
    for environment in Environment.objects.order_by("position", "name").values_list(
        "name", flat=True
    ):
        # Declared as -Q and the publisher declare a queue not in CELERY_TASK_QUEUES (its own
        # direct exchange), so both sides bind alike.
        queues = app.amqp.queues
        queue = queues.select_add(queues[terraform_queue(environment)])
        added.append(queue.name)
    log.info("no -Q given: consuming the Terraform queues of every environment: %s", added)
    return added
