"""`make bench`: every performance figure side by side with its baseline, from one run.

Each module exposes ``run(ctx: Context) -> list[Figure]``; ``python -m benchmarks`` runs them
in order and writes benchmarks/RESULTS.md (replaced on each run).
"""
