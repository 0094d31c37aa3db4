"""Run logs: whole, or from an offset (the live page follows a running Terraform)."""

from __future__ import annotations

from deployments.models import (
    RunLogChunk,
    TerraformRun,
)


def run_log_text(run: TerraformRun) -> str:
    """The whole log: final once the run is finished, assembled from chunks while it runs."""
    if run.log or not run.is_active:
        return run.log
    return "".join(RunLogChunk.objects.filter(run=run).values_list("text", flat=True))


def run_log_since(run: TerraformRun, offset: int) -> tuple[str, int]:
    """Log text from character ``offset`` on, and the offset to ask for next (live pages).

    While a run is active its log lives in chunks that each know their starting
    offset; once it finishes they are folded into ``log``, with the same offsets.
    """
    offset = max(offset, 0)
    if run.is_active:
        text = "".join(
            RunLogChunk.objects.filter(run=run, start__gte=offset)
            .order_by("seq")
            .values_list("text", flat=True)
        )
    else:
        text = run.log[offset:]
    return text, offset + len(text)
