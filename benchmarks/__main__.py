"""``python -m benchmarks [--quick] [--only NAME ...]``: run every benchmark module found,
print one line per figure, write benchmarks/RESULTS.md (replaced on each run).

Exits 0 when targets are missed (this is a report) and 1 when a module crashed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import shlex
import sys
import time
import traceback

from benchmarks.common import ROOT, Context, Figure, machine

# In this order; a module that does not exist (not merged yet) is skipped with a note.
MODULES = [
    "terraform_bench",
    "pages_bench",
    "load_bench",
    "memory_bench",
    "audit_bench",
    "serializer_bench",
]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# Environment variables that shape a run; echoed into the report.
SETTINGS = ["BENCH_DATABASE_URL", "BENCH_BROKER_URL", "BENCH_ARGS"]


def _line(figure: Figure) -> str:
    met = {True: "met", False: "MISSED", None: "-"}[figure.met]
    ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "-"
    parts = [figure.name, figure.value]
    if figure.baseline:
        parts.append(f"vs {figure.baseline}")
    parts.append(f"ratio {ratio}")
    if figure.target:
        parts.append(f"target {figure.target}: {met}")
    if figure.note:
        parts.append(f"({figure.note})")
    return " | ".join(parts)


def _row(figure: Figure) -> str:
    met = {True: "✅ met", False: "❌ missed", None: ""}[figure.met]
    ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else ""
    cells = [figure.name, figure.value, figure.baseline, ratio, figure.target, met, figure.note]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _redact(url: str) -> str:
    """A database URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer tickets and samples")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this module (repeatable)"
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    ctx = Context(quick=args.quick)
    ctx.work.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks" + "".join(
        f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:])
    )
    started = dt.datetime.now(dt.UTC)
    header = [
        f"Machine: {machine()}",
        f"Configurations: {', '.join(ctx.configurations)}; quick: {ctx.quick}",
        *(f"{name}={_redact(os.environ[name])}" for name in SETTINGS if os.environ.get(name)),
    ]
    for line in header:
        print(line)
    sections: list[tuple[str, list[Figure], str]] = []
    crashed = False
    wanted = [m for m in MODULES if not args.only or m in args.only or m[:-6] in args.only]
    for name in wanted:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            print(f"== {name}: not present, skipped")
            sections.append((name, [], "not present in this checkout: skipped"))
            continue
        print(f"== {name}")
        began = time.perf_counter()
        try:
            figures = module.run(ctx)
        except Exception:
            crashed = True
            trace = traceback.format_exc()
            print(trace, file=sys.stderr)
            sections.append((name, [], f"CRASHED:\n\n```\n{trace}\n```"))
            continue
        for figure in figures:
            print("  " + _line(figure))
        took = time.perf_counter() - began
        print(f"  ({name}: {took:.0f} s)")
        sections.append((name, figures, f"{took:.0f} s"))
    finished = dt.datetime.now(dt.UTC)
    _write(command, started, finished, header, sections)
    print(f"Wrote {RESULTS.relative_to(ROOT)} ({(finished - started).total_seconds():.0f} s)")
    return 1 if crashed else 0


def _write(
    command: str,
    started: dt.datetime,
    finished: dt.datetime,
    header: list[str],
    sections: list[tuple[str, list[Figure], str]],
) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (benchmarks/__main__.py); replaced on each run.",
        "",
        f"- Command: `{command}`",
        f"- Started: {started:%Y-%m-%d %H:%M:%S} UTC, took "
        f"{(finished - started).total_seconds():.0f} s",
        *(f"- {line}" for line in header),
        "",
    ]
    figures_all = [f for _, figures, _ in sections for f in figures]
    targets = [f for f in figures_all if f.met is not None]
    lines.append(
        f"Targets met: {sum(1 for f in targets if f.met)} of {len(targets)}."
        if targets
        else "No targeted figures in this run."
    )
    for name, figures, note in sections:
        lines += ["", f"## {name}", "", note, ""]
        if figures:
            lines += [
                "| Figure | Value | Baseline | Ratio | Target | Met | Note |",
                "|---|---|---|---|---|---|---|",
                *(_row(f) for f in figures),
            ]
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
