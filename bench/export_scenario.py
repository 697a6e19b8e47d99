"""The export scenario: `landscape-graphql export --preset run` beside its floor.

    .venv/bin/python -m bench.export_scenario [--rows 25000] [--rows 250000] [--repeat 3]

Floor: sqlite3 reading the same records of every type of the run (one SELECT per table),
each serialised with orjson and written to a file, in a process of its own. Measured: the
export in-process (`--db`) and over HTTP (`--url` against `landscape-graphql serve` on
127.0.0.1, a fresh server per repeat), each a subprocess whose wall time, CPU time (user +
sys) and peak RSS (ru_maxrss from wait4) are reported, the server's CPU and peak RSS (VmHWM)
beside; then a full `verify` and a `--records` check of 1,000 records. Each size is run
`--repeat` times, interleaved (floor, in-process, HTTP, floor, ...) so load drifts hit all
alike; medians are printed. Outputs are deleted as soon as they are checked (a 250,000-row run
is 8 GB of JSON). Databases come from bench/data (bench/data.py).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from .measure import free_port

DATA = Path(__file__).parent / "data"
CLI = [sys.executable, "-m", "landscape_graphql.cli"]

FLOOR_SQL = [
    "SELECT * FROM runs WHERE run_id = ?1", "SELECT * FROM nodes WHERE run_id = ?1",
    "SELECT * FROM edges WHERE run_id = ?1", "SELECT * FROM operations WHERE run_id = ?1",
    "SELECT c.* FROM calls c LEFT JOIN node_states s ON s.state_id = c.state_id LEFT JOIN operations o "
    "ON o.operation_id = c.operation_id WHERE s.run_id = ?1 OR o.run_id = ?1",
    "SELECT * FROM rows WHERE run_id = ?1", "SELECT * FROM tokens WHERE run_id = ?1",
    "SELECT * FROM token_parents WHERE run_id = ?1", "SELECT * FROM token_outcomes WHERE run_id = ?1",
    "SELECT * FROM node_states WHERE run_id = ?1", "SELECT * FROM routing_events WHERE run_id = ?1",
    "SELECT * FROM batches WHERE run_id = ?1", "SELECT * FROM batch_members WHERE run_id = ?1",
    "SELECT * FROM artifacts WHERE run_id = ?1", "SELECT * FROM validation_errors WHERE run_id = ?1",
    "SELECT * FROM transform_errors WHERE run_id = ?1", "SELECT * FROM preflight_results WHERE run_id = ?1",
    "SELECT * FROM checkpoints WHERE run_id = ?1", "SELECT * FROM sink_effects WHERE run_id = ?1",
    "SELECT * FROM sink_effect_members WHERE run_id = ?1", "SELECT * FROM coalesce_effects WHERE run_id = ?1",
    "SELECT * FROM coalesce_effect_members WHERE run_id = ?1",
    "SELECT * FROM coalesce_branch_losses WHERE run_id = ?1", "SELECT * FROM scheduler_events WHERE run_id = ?1",
]


def floor(db: Path, run_id: str, out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    records = 0
    with out.open("wb") as f:
        for sql in FLOOR_SQL:
            cursor = conn.execute(sql, (run_id,))
            names = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(5000):
                for row in rows:
                    f.write(orjson.dumps(dict(zip(names, row, strict=True)), option=orjson.OPT_SORT_KEYS) + b"\n")
                records += len(rows)
    conn.close()
    return time.perf_counter() - started, records


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + sys seconds
    rss: float  # peak MB


def timed(args: list[str]) -> Run:
    """Wall seconds, CPU seconds and peak RSS (MB) of a subprocess."""
    started = time.perf_counter()
    process = subprocess.Popen(args)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def server_figures(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (VmHWM, MB) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return cpu, int(line.split()[1]) / 1024
    return cpu, 0.0


def manifest_of(out: Path) -> tuple[str, str]:
    manifest = orjson.loads(Path(f"{out}.manifest.json").read_bytes())
    return manifest["root"], manifest["files"][0]["sha256"]


def remove(out: Path) -> None:
    for path in (out, Path(f"{out}.manifest.json")):
        path.unlink(missing_ok=True)


def http_export(db: Path, run_id: str, out: Path) -> tuple[Run, float, float]:
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--db", str(db), "--no-graphiql", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cpu0, _ = server_figures(server.pid)
        run = timed([*CLI, "export", "--url", f"http://127.0.0.1:{port}", "--preset", "run", "--run", run_id,
                     "-o", str(out), "-q"])
        cpu1, server_rss = server_figures(server.pid)
    finally:
        server.terminate()
        server.wait(60)
    return run, cpu1 - cpu0, server_rss


def median(values: list[float]) -> float:
    return statistics.median(values)


def scenario(rows: int, repeat: int) -> None:
    db = DATA / f"e29-fork_coalesce-r{rows}-s1.db"
    if not (DATA / f"e29-fork_coalesce-r{rows}-s1.ok").exists():
        raise SystemExit(f"{db} is not generated: run bench/data.py first")
    run_id = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT run_id FROM runs").fetchone()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    floors: list[Run] = []
    locals_: list[Run] = []
    https: list[Run] = []
    server_cpu: list[float] = []
    server_rss: list[float] = []
    verify: list[Run] = []
    ranged: list[Run] = []
    records = 0
    for i in range(repeat):
        floor_out = tmp / "floor.jsonl"
        floors.append(timed([sys.executable, "-m", "bench.export_scenario", "--floor", str(db), run_id,
                             str(floor_out)]))
        records = sum(1 for _ in floor_out.open("rb"))
        floor_out.unlink()
        local = tmp / "local.jsonl"
        locals_.append(timed([*CLI, "export", "--db", str(db), "--preset", "run", "--run", run_id,
                              "-o", str(local), "-q"]))
        verify.append(timed([*CLI, "verify", str(local)]))
        ranged.append(timed([*CLI, "verify", str(local), "--records", "70000-70999"]))
        expected = manifest_of(local)
        remove(local)
        http = tmp / "http.jsonl"
        run, cpu, rss = http_export(db, run_id, http)
        https.append(run)
        server_cpu.append(cpu)
        server_rss.append(rss)
        same = manifest_of(http) == expected
        remove(http)
        f, lo, h = floors[-1], locals_[-1], https[-1]
        print(f"  repeat {i + 1}: floor {f.wall:.1f}s/{f.cpu:.1f}s cpu, in-process {lo.wall:.1f}s/{lo.cpu:.1f}s "
              f"({lo.wall / f.wall:.2f}x wall), http {h.wall:.1f}s/{h.cpu:.1f}s+server {cpu:.1f}s "
              f"({h.wall / f.wall:.2f}x wall), same root and bytes={same}", flush=True)
        if not same:
            raise SystemExit("the HTTP export differs from the in-process one")
    tmp.rmdir()
    fw, fc = median([r.wall for r in floors]), median([r.cpu for r in floors])
    lw, lc = median([r.wall for r in locals_]), median([r.cpu for r in locals_])
    hw, hc = median([r.wall for r in https]), median([r.cpu for r in https])
    sc = median(server_cpu)
    print(f"rows={rows:,} records={records:,} repeats={repeat} (medians)\n"
          f"  floor       {fw:7.1f} s wall {fc:7.1f} s cpu  peak {median([r.rss for r in floors]):4.0f} MB\n"
          f"  in-process  {lw:7.1f} s wall {lc:7.1f} s cpu  peak {median([r.rss for r in locals_]):4.0f} MB"
          f"  {lw / fw:.2f}x wall {lc / fc:.2f}x cpu\n"
          f"  http        {hw:7.1f} s wall {hc:7.1f} s cpu  peak {median([r.rss for r in https]):4.0f} MB"
          f"  {hw / fw:.2f}x wall; server {sc:.1f} s cpu, peak {median(server_rss):.0f} MB (max "
          f"{max(server_rss):.0f}); client+server {(hc + sc) / fc:.2f}x cpu\n"
          f"  verify      {median([r.wall for r in verify]):7.1f} s wall"
          f"  records 70000-70999 {median([r.wall for r in ranged]):.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor", nargs=3, metavar=("DB", "RUN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(Path(args.floor[0]), args.floor[1], Path(args.floor[2]))
        return
    for rows in args.rows or [25_000]:
        scenario(rows, args.repeat)


if __name__ == "__main__":
    main()
