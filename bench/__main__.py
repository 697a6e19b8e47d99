"""Run the benchmarks: `.venv/bin/python -m bench` (see BENCHMARKS.md for the results).

Options: `--only 1,3` runs some scenarios; `--quick` runs fewer repeats, shorter load and
skips the 250,000-row database (for trying things out; BENCHMARKS.md says so when used);
`--out FILE` writes the report elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path

from . import report, scenarios
from .measure import ROOT, load_average


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="scenarios to run, e.g. 1,3")
    parser.add_argument("--quick", action="store_true", help="fewer repeats; no 250,000-row database")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    wanted = sorted({int(n) for n in args.only.split(",")})
    opts = scenarios.Options(repeat=3 if args.quick else 7, quick=args.quick)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "-m", "bench", *(argv or sys.argv[1:])])

    from .stack import lock_differences
    differences = lock_differences()
    if differences:
        print("refusing to measure a stack that differs from requirements.lock:\n  " + "\n  ".join(differences)
              + "\nreinstall: .venv/bin/pip install --require-hashes -r requirements.lock", file=sys.stderr)
        return 2
    started = time.perf_counter()
    load_before = load_average()
    print(f"load average before: {load_before[0]:.2f}", flush=True)
    small, large = scenarios.datasets(args.quick)
    results = []
    for number in wanted:
        print(f"scenario {number}...", flush=True)
        t = time.perf_counter()
        if number == 1:
            result = asyncio.run(scenarios.scenario_1(small, opts))
        elif number == 2:
            result = asyncio.run(scenarios.scenario_2(small, opts))
        elif number == 3:
            result = scenarios.scenario_3(small, large, opts)
        elif number == 4:
            result = asyncio.run(scenarios.scenario_4(opts))
        elif number == 5:
            result = scenarios.scenario_5(small, opts)
        elif number == 7:
            result = scenarios.scenario_7(small, opts)
        else:
            result = scenarios.scenario_6(large or small, opts)
        results.append(result)
        print(report.console(result), f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    report.write(args.out, command=command, results=results, datasets=[d for d in (small, large) if d],
                 load=(load_before, load_average()), elapsed=time.perf_counter() - started, quick=args.quick)
    print(f"wrote {args.out}")
    return 0 if all(c.passed for r in results for c in r.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
