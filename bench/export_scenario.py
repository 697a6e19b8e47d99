"""The export scenario: `landscape-graphql export --preset run` beside its floor.

    .venv/bin/python -m bench.export_scenario [--rows 25000] [--rows 250000]

Floor: sqlite3 reading the same records of every type of the run (one SELECT per table),
each serialised with orjson and written to a file. Measured: the export in-process (`--db`)
and over HTTP (`--url` against `landscape-graphql serve` on 127.0.0.1), each a subprocess
whose peak RSS (ru_maxrss from wait4) is reported, the server's as its VmHWM; then a full
`verify` and a `--records` check of 1,000 records. Databases come from bench/data (bench/data.py).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
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


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a subprocess."""
    started = time.perf_counter()
    process = subprocess.Popen(args)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed")
    return wall, usage.ru_maxrss / 1024


def vm_hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scenario(rows: int) -> None:
    db = DATA / f"e29-fork_coalesce-r{rows}-s1.db"
    if not (DATA / f"e29-fork_coalesce-r{rows}-s1.ok").exists():
        raise SystemExit(f"{db} is not generated: run bench/data.py first")
    run_id = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT run_id FROM runs").fetchone()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    floor_s, records = floor(db, run_id, tmp / "floor.jsonl")
    local_s, local_rss = timed([*CLI, "export", "--db", str(db), "--preset", "run", "--run", run_id,
                                "-o", str(tmp / "local.jsonl"), "-q"])
    verify_s, _ = timed([*CLI, "verify", str(tmp / "local.jsonl")])
    range_s, _ = timed([*CLI, "verify", str(tmp / "local.jsonl"), "--records", "70000-70999"])
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--db", str(db), "--no-graphiql", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        http_s, http_rss = timed([*CLI, "export", "--url", f"http://127.0.0.1:{port}", "--preset", "run",
                                  "--run", run_id, "-o", str(tmp / "http.jsonl"), "-q"])
        server_rss = vm_hwm(server.pid)
    finally:
        server.terminate()
        server.wait(60)
    same = (tmp / "local.jsonl").read_bytes() == (tmp / "http.jsonl").read_bytes()
    print(f"rows={rows:,} records={records:,} floor={floor_s:.2f}s in-process={local_s:.2f}s "
          f"({local_s / floor_s:.2f}x, peak {local_rss:.0f} MB) http={http_s:.2f}s ({http_s / floor_s:.2f}x, "
          f"client peak {http_rss:.0f} MB, server peak {server_rss:.0f} MB) verify={verify_s:.2f}s "
          f"records-1000={range_s:.2f}s same-bytes={same}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, action="append")
    for rows in parser.parse_args().rows or [25_000]:
        scenario(rows)


if __name__ == "__main__":
    main()
