"""BENCHMARKS.md: the figures of one run, with its command line, machine and data."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

from .data import Landscape
from .scenarios import Result, now
from .stack import describe

PACKAGES = ("strawberry-graphql", "graphql-core", "sqlalchemy", "aiosqlite", "starlette", "uvicorn", "orjson",
            "aiodataloader", "httptools", "uvloop")


def console(result: Result) -> str:
    lines = [f"  {result.title}"]
    lines += ["    " + " | ".join(row) for row in result.rows]
    lines += [f"    [{'PASS' if c.passed else 'FAIL'}] {c.target}: {c.measured}" for c in result.checks]
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _counts(ds: Landscape) -> str:
    with ds.connect() as conn:
        n = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("rows", "tokens", "node_states", "token_outcomes", "token_parents", "calls",
                       "routing_events")}
    size = ds.path.stat().st_size / 1e9
    return (f"{n['rows']:,} rows, {n['tokens']:,} tokens, {n['node_states']:,} node states, "
            f"{n['token_outcomes']:,} outcomes, {n['token_parents']:,} parent links, {n['calls']:,} calls, "
            f"{n['routing_events']:,} routing events; {size:.1f} GB")


def write(out: Path, *, command: str, results: list[Result], datasets: list[Landscape],
          load: tuple[tuple[float, float, float], tuple[float, float, float]], elapsed: float,
          quick: bool) -> None:
    checks = [(r.number, c) for r in results for c in r.checks]
    passed = sum(c.passed for _, c in checks)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {now()} (commit {_commit()}), in {elapsed / 60:.1f} minutes. "
        "Regenerate with the same command; the databases are generated on first use and cached under "
        "`bench/data/`.",
        "",
    ]
    if quick:
        lines += ["**Quick run** (`--quick`): fewer repeats, shorter load, no 250,000-row database. "
                  "Figures are indicative only.", ""]
    lines += [
        "## Summary",
        "",
        f"{passed} of {len(checks)} targets met.",
        "",
        "| scenario | target | measured | |",
        "|---|---|---|---|",
        *[f"| {n} | {c.target} | {c.measured} | {'pass' if c.passed else '**FAIL**'} |" for n, c in checks],
        "",
        "## Machine and data",
        "",
        f"- {os.cpu_count()} CPUs ({_cpu()}), {_memory_gb():.0f} GB; Linux {platform.release()}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- {_versions()}",
        f"- server stack: {describe()}",
        f"- load average {load[0][0]:.2f} before the run, {load[1][0]:.2f} after (1 min)",
        *[f"- `{ds.path.relative_to(ds.path.parent.parent.parent)}`: `generate(path, epoch=29, rows={ds.rows}, "
          f"seed=1, shape=\"fork_coalesce\")`: {_counts(ds)}" for ds in datasets],
        "- Medians of repeated runs after a warm-up run; \"range\" is the fastest to the slowest run.",
        "",
    ]
    for result in results:
        lines += [f"## {result.number}. {result.title}", ""]
        lines.append("| " + " | ".join(result.header) + " |")
        lines.append("|" + "---|" * len(result.header))
        lines += ["| " + " | ".join(row) + " |" for row in result.rows]
        lines.append("")
        for check in result.checks:
            lines.append(f"- Target: {check.target}: **{check.measured}**, "
                         f"{'met' if check.passed else 'NOT met'}.")
        for note in result.notes:
            lines.append(f"- {note}")
        lines.append("")
    viewer = Path(__file__).with_name("viewer.md")  # written by `python -m bench.viewer`
    if viewer.exists():
        lines += [viewer.read_text().rstrip(), ""]
    analysis = Path(__file__).with_name("analysis.md")
    if analysis.exists():
        lines += [analysis.read_text().rstrip(), ""]
    lines += _kept_sections(out)
    out.write_text("\n".join(lines).rstrip() + "\n")


# Sections other benchmark scripts write by hand (e.g. bench/analytics.py): kept on a rewrite.
KEPT_SECTIONS = ("## Run analytics",)


def _kept_sections(out: Path) -> list[str]:
    if not out.exists():
        return []
    text = out.read_text()
    kept = []
    for heading in KEPT_SECTIONS:
        start = text.find("\n" + heading)
        if start >= 0:
            end = text.find("\n## ", start + 1)
            kept += [text[start + 1:end if end >= 0 else len(text)].rstrip(), ""]
    return kept
