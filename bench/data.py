"""The benchmark's Landscapes: generated once with the project's generator, cached by parameters.

`bench/data/<epoch>-<shape>-r<rows>-s<seed>.db` (gitignored) with its payload store; a `.ok`
file beside it marks a generation that finished, so an interrupted one is redone, not used.
Everything a scenario needs (run id, tokens with lineage, samples) is read from the database.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Landscape:
    path: Path
    payloads: Path
    rows: int
    run_id: str
    generated_s: float | None  # None when it came from the cache

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)


def landscape(rows: int, *, epoch: int = 29, shape: str = "fork_coalesce", seed: int = 1) -> Landscape:
    name = f"e{epoch}-{shape}-r{rows}-s{seed}"
    path = DATA / f"{name}.db"
    marker = DATA / f"{name}.ok"
    generated: float | None = None
    if not (path.exists() and marker.exists()):
        from landscape_graphql.demo import generate

        DATA.mkdir(exist_ok=True)
        print(f"  generating {path.name} ({rows:,} rows; cached for later runs)...", flush=True)
        started = time.perf_counter()
        generate(path, epoch=epoch, rows=rows, seed=seed, shape=shape, overwrite=True)
        generated = time.perf_counter() - started
        marker.write_text(f"generated in {generated:.1f} s\n")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (run_id,) = conn.execute("SELECT run_id FROM runs ORDER BY started_at LIMIT 1").fetchone()
    return Landscape(path, path.with_suffix(".payloads"), rows, run_id, generated)


def lineage_token(ls: Landscape) -> str:
    """A fork child: it has a parent (ancestors) and a coalesced child (descendants)."""
    with ls.connect() as conn:
        row = conn.execute(
            "SELECT t.token_id FROM tokens t WHERE t.fork_group_id IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM token_parents c WHERE c.parent_token_id = t.token_id) "
            "ORDER BY t.rowid LIMIT 1 OFFSET 100").fetchone()
    return str(row[0])


def token_sample(ls: Landscape, n: int) -> list[str]:
    """n tokens spread evenly over the run, in the order ELSPETH created them."""
    with ls.connect() as conn:
        (total,) = conn.execute("SELECT count(*) FROM tokens WHERE run_id = ?", (ls.run_id,)).fetchone()
        step = max(1, total // n)
        return [r[0] for r in conn.execute(
            "SELECT token_id FROM tokens WHERE run_id = ? AND rowid % ? = 0 ORDER BY rowid LIMIT ?",
            (ls.run_id, step, n))]
