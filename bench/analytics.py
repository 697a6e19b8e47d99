"""Latency and SQL cost of the all-analytics query (every Run analytics field, issue 14).

    .venv/bin/python -m bench.analytics [--repeat N] [--large]

In process (fast execution path, payload store configured), on the benchmark's 25,000-row
database (and with --large the 250,000-row one, only if it was already generated: it is ~10 GB);
also the statement counts of `runs(first: 1)` and `runs(first: 50)` over the 12-run fixture.
On the bench databases the query is also timed without the node percentiles (p50Ms, p95Ms,
p99Ms), the one part that sorts every node state of the run. Prints a Markdown table for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from landscape_graphql.context import Context
from landscape_graphql.db.engine import open_landscape
from landscape_graphql.payloads import ByteBudget, PayloadStore
from landscape_graphql.schema import build_schema
from landscape_graphql.settings import Settings
from tests._analytics import RUNS_QUERY

from .data import DATA, landscape
from .measure import ROOT, load_average

MULTIRUN = ROOT / "tests" / "fixtures" / "epoch2" / "examples-multirun.db"
NO_PERCENTILES = RUNS_QUERY.replace("p50Ms p95Ms p99Ms ", "")


async def _run(db: str, payloads: Path | None, n: int, repeat: int, timeout_s: float = 30.0,
               query: str = RUNS_QUERY) -> tuple[list[float], dict[str, Any], int, list[float]]:
    ls = await open_landscape(db)
    settings = Settings(request_timeout_s=timeout_s)
    schema = build_schema(settings)
    times: list[float] = []
    cpu: list[float] = []  # the process's CPU seconds (SQLite's worker threads included)
    cost: dict[str, Any] = {}
    runs = 0
    try:
        for i in range(repeat + 1):
            extra: dict[str, Any] = {}
            if payloads is not None:
                extra = {"payload_store": PayloadStore((payloads,)), "payload_budget": ByteBudget()}
            ctx = Context.create(ls, settings, **extra)
            started, cpu_started = time.perf_counter(), time.process_time()
            async with ctx.held_connections():  # as the app's request path does
                result = await schema.execute(query, variable_values={"n": n}, context_value=ctx)
            elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
            assert not result.errors, result.errors
            assert result.data is not None
            runs = len(result.data["runs"]["nodes"])
            cost = ctx.db.cost()
            if i:  # the first run warms the statement and plan caches
                times.append(elapsed)
                cpu.append(cpu_used)
    finally:
        await ls.dispose()
    return times, cost, runs, cpu


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--large", action="store_true", help="also the 250,000-row database, if generated")
    parser.add_argument("--timeout", type=float, default=30.0, help="request timeout for the bench databases")
    args = parser.parse_args(argv)
    print(f"load average before: {load_average()[0]:.2f}")
    lines = ["| database | runs | SQL statements | rows read | median latency | range | median CPU |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "multirun.db"
        shutil.copy2(MULTIRUN, copy)  # a WAL fixture is never opened in place
        for n in (1, 50):
            times, cost, runs, cpu = asyncio.run(_run(str(copy), None, n, args.repeat))
            lines.append(f"| examples-multirun fixture, runs(first: {n}) | {runs} | {cost['sqlStatements']} | "
                         f"{cost['rowsRead']:,} | {_median(times) * 1000:.1f} ms | "
                         f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} ms | {_median(cpu) * 1000:.1f} ms |")
    targets = [landscape(25_000)]
    large = DATA / "e29-fork_coalesce-r250000-s1"
    if args.large and large.with_suffix(".ok").exists():
        targets.append(landscape(250_000))
    # Each timed after one warm-up run; the 250,000-row one once (minutes per run).
    for target in targets:
        repeat = args.repeat if target.rows < 250_000 else 1
        for label, query in (("", RUNS_QUERY), (", without percentiles", NO_PERCENTILES)):
            times, cost, runs, cpu = asyncio.run(
                _run(str(target.path), target.payloads, 1, repeat, args.timeout, query))
            lines.append(f"| {target.rows:,}-row bench database{label} | {runs} | {cost['sqlStatements']} | "
                         f"{cost['rowsRead']:,} | {_median(times) * 1000:.0f} ms | "
                         f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms | {_median(cpu) * 1000:.0f} ms |")
    print(f"load average after: {load_average()[0]:.2f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
