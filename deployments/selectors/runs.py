"""Run logs: whole, page by page from the end, or from an offset (the live page follows a
running Terraform)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.db.models.functions import Length, Right, Substr

from deployments.models import RunLogChunk, TerraformRun

# How much of a run's log one answer carries: the API's and the page's `log` is its tail,
# earlier pages are asked for with ?before= (GET /api/v1/runs/{id}/log/).
LOG_PAGE_CHARS = 64 * 1024


def run_log_text(run: TerraformRun) -> str:
    """The whole stored log (bounded by RUN_LOG_MAX_BYTES): final once the run is
    finished, assembled from chunks while it runs."""
    if run.log or not run.is_active:
        return run.log
    return "".join(RunLogChunk.objects.filter(run=run).values_list("text", flat=True))


@dataclass(frozen=True)
class LogPage:
    """Characters ``start``..``end`` of a run's log of ``size`` characters."""

    text: str
    start: int
    end: int
    size: int


def run_log_page(
    run: TerraformRun, *, before: int | None = None, limit: int = LOG_PAGE_CHARS
) -> LogPage:
    """The ``limit`` characters of the log ending at ``before`` (default: its end): the
    tail first, then earlier pages. A finished run's log is cut in the database."""
    limit = max(1, min(limit, LOG_PAGE_CHARS))
    tail = getattr(run, "log_tail", None)  # runs_with_log_tails: the last page is there
    if tail is not None and not run.is_active and before is None and limit == LOG_PAGE_CHARS:
        size = int(getattr(run, "log_size", 0) or 0)
        return LogPage(tail, size - len(tail), size, size)
    if run.is_active:
        # Until the run finishes its log is in chunks (``log`` is folded in at the end).
        text = "".join(
            RunLogChunk.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
        )
        size = len(text)
        end = size if before is None else max(0, min(before, size))
        start = max(0, end - limit)
        return LogPage(text[start:end], start, end, size)
    size = (
        TerraformRun.objects.filter(pk=run.pk)
        .annotate(n=Length("log"))
        .values_list("n", flat=True)
        .first()
        or 0
    )
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - limit)
    piece = (
        TerraformRun.objects.filter(pk=run.pk)
        .annotate(piece=Substr("log", start + 1, end - start))
        .values_list("piece", flat=True)
        .first()
        if end > start
        else ""
    )
    return LogPage(piece or "", start, end, size)


def runs_with_log_tails(runs: QuerySet[TerraformRun]) -> QuerySet[TerraformRun]:
    """Runs without their whole logs: ``log_tail`` (the last page) and ``log_size``."""
    return runs.defer("log").annotate(log_tail=Right("log", LOG_PAGE_CHARS), log_size=Length("log"))


def run_log_since(run: TerraformRun, offset: int) -> tuple[str, int]:
    """Log text from character ``offset`` on, and the offset to ask for next (live pages).

    While a run is active its log lives in chunks that each know their starting
    offset; once it finishes they are folded into ``log``, with the same offsets. A reader
    further behind than one page gets the last page, after a line saying what it skipped.
    """
    offset = max(offset, 0)
    if run.is_active:
        text = "".join(
            RunLogChunk.objects.filter(run=run, start__gte=offset)
            .order_by("seq")
            .values_list("text", flat=True)
        )
        end = offset + len(text)
    else:
        page = run_log_page(run)
        end = page.size
        if offset >= page.start:
            return page.text[offset - page.start :], end
        skipped = page.start - offset
        return f"[… {skipped} characters skipped: see the run's full log …]\n{page.text}", end
    if len(text) > LOG_PAGE_CHARS:
        skipped = len(text) - LOG_PAGE_CHARS
        text = f"[… {skipped} characters skipped …]\n" + text[-LOG_PAGE_CHARS:]
    return text, end
