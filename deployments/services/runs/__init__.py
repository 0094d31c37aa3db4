"""The run pipeline: start (queue a plan, an apply, a post-apply check), spec (what
Terraform is given), claim, execute, logstream (output and heartbeat), outcome (recorded,
then the ticket moves on through services.lifecycle) and reconcile (lost workers).

Applies are fenced: the worker takes the environment lock (deployments.lib.locks) before it
claims the run and holds it until the outcome is recorded, and each claim gets a fencing
token (``Environment.apply_fence``, copied to ``TerraformRun.fence``). Every later write of
the run (log chunks, heartbeat, outcome) is conditioned on that token and on the run still
running, so a worker that was declared gone cannot overwrite what others decided since.
The reconciler interrupts an apply only when it can take the environment lock itself.
"""

from deployments.services.runs.execute import run_execute
from deployments.services.runs.outcome import run_finish
from deployments.services.runs.reconcile import run_interrupt, runs_reconcile
from deployments.services.runs.spec import run_spec, terraform_spec
from deployments.services.runs.start import (
    apply_start,
    check_start,
    dispatch_on_commit,
    environment_release,
    plan_start,
    plan_var_file,
    run_dispatch,
)

__all__ = [
    "apply_start",
    "check_start",
    "dispatch_on_commit",
    "environment_release",
    "plan_start",
    "plan_var_file",
    "run_dispatch",
    "run_execute",
    "run_finish",
    "run_interrupt",
    "run_spec",
    "runs_reconcile",
    "terraform_spec",
]
