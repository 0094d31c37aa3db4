"""What every benchmark module shares: the figure it reports and the run's context."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    """One line of the report: a measured value, its baseline from the same run, the ratio.

    ``ratio`` is value / baseline (lower is better unless the name says otherwise);
    ``target`` says what is wanted ("≤ 1.10", "p95 < 300 ms"); ``met`` whether it was.
    """

    name: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Context:
    """Options of this run, shared by every module."""

    quick: bool = False
    work: Path = field(default_factory=lambda: ROOT / "var" / "bench")
    # Configurations to measure: "embedded" (SQLite + filesystem broker) and "server"
    # (PostgreSQL + Redis, when reachable).
    configurations: tuple[str, ...] = ("embedded", "server")


def machine() -> str:
    """Cores, memory and Python of this machine, for the report's header."""
    cores = os.cpu_count() or 0
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown memory"
    return f"{cores} cores, {memory}, Python {platform.python_version()}, {platform.system()}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0 to 100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
