"""Deterministic generator of Landscape databases shaped like the ones ELSPETH writes.

`generate()` creates the schema from the project's own table models, records one or more
simulated pipeline runs into it in a single bulk transaction, and writes the content-addressed
payload store beside it. The same arguments always produce byte-identical table contents.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import create_engine, event
from sqlalchemy.schema import CreateIndex

from landscape_graphql.db.tables import SUPPORTED_EPOCHS, tables_for

from ._core import Clock, PayloadStore, Rand
from ._expand_aggregate import run_expand_aggregate
from ._fork_coalesce import run_fork_coalesce
from ._llm import run_llm, run_routing
from ._recorder import Recorder
from ._run import Run
from ._shapes import run_crashed, run_deep_chain, run_wide_fan
from ._sinks import FileSink, InlineFiles, InlineRows, ProcessFiles, ProcessRows, RowSink

Pipeline = Callable[[Recorder, int], tuple[Run, dict[str, str]]]


# shape -> the runs it records, each with the size it gets out of `rows`.
_SHAPES: dict[str, list[tuple[str, Pipeline, Callable[[int], int]]]] = {
    "mixed": [
        ("fork_coalesce", run_fork_coalesce, lambda r: max(8, r * 2 // 5)),
        ("expand_aggregate", run_expand_aggregate, lambda r: max(8, r // 4)),
        ("llm_calls", run_llm, lambda r: max(6, r * 3 // 20)),
        ("gate_routing", run_routing, lambda r: max(6, r // 10)),
        ("crashed", run_crashed, lambda r: max(7, r // 10)),
        ("deep_chain", run_deep_chain, lambda r: max(5, r // 20)),
        ("wide_fan", run_wide_fan, lambda r: max(10, r // 4)),
    ],
    "fork_coalesce": [("fork_coalesce", run_fork_coalesce, lambda r: r)],
    "expand_aggregate": [("expand_aggregate", run_expand_aggregate, lambda r: r)],
    "llm_calls": [("llm_calls", run_llm, lambda r: r)],
    "deep_chain": [("deep_chain", run_deep_chain, lambda r: r)],
    "wide_fan": [("wide_fan", run_wide_fan, lambda r: r)],
}
SHAPES = tuple(_SHAPES)

# Helper processes pay for their start-up from about this many tokens on.
_PARALLEL_TOKENS = 10_000
_TOKENS_PER_ROW = {"mixed": 4.5, "fork_coalesce": 4.7, "expand_aggregate": 6.5, "llm_calls": 1.0,
                   "deep_chain": 1.0, "wide_fan": 1.0}


@dataclass(frozen=True)
class GenerationReport:
    """What `generate()` wrote. `tokens` maps a case name (e.g. `coalesced_multi_parent`) to one
    token id showing that case; `runs` maps each pipeline's name to its run id."""

    db_path: Path
    payload_dir: Path
    epoch: int
    shape: str
    seed: int
    rows: int
    run_ids: tuple[str, ...]
    runs: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)
    payload_files: int = 0


def _unsynced(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.execute("PRAGMA synchronous=OFF")


def _sidecars(db: Path) -> list[Path]:
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def generate(out: Path | str, *, epoch: int = 29, rows: int = 200, seed: int = 0,
             payloads: Path | str | None = None, shape: str = "mixed", overwrite: bool = False,
             scheduler_events: bool = True, parallel: bool | None = None) -> GenerationReport:
    """Write a Landscape database of schema `epoch` to `out`, and its payload store.

    shape: "mixed" (every lineage shape, several runs; `rows` split between them),
    "fork_coalesce" (`rows` source rows; ~4.69 tokens and ~10.35 node states each),
    "expand_aggregate" (`rows` orders), "llm_calls" (`rows` rows), "deep_chain" (a lineage chain
    `rows` deep) or "wide_fan" (one token with `rows` children).
    payloads: the store's directory; default `out` with the suffix `.payloads`. Existing files
    there are kept (the store is content-addressed, so a rewrite is identical).
    scheduler_events: record epoch 29's scheduler transitions (about four per token, a third of
    all rows); turn off for leaner benchmark databases.
    parallel: write rows and payload files from two helper processes (default: only for large
    outputs). The result is identical either way.
    """
    if epoch not in SUPPORTED_EPOCHS:
        raise ValueError(f"epoch must be one of {SUPPORTED_EPOCHS}, not {epoch}")
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists (pass overwrite=True to replace it)")
        for path in _sidecars(out):
            path.unlink(missing_ok=True)
    payload_dir = Path(payloads) if payloads is not None else out.with_suffix(".payloads")
    created_store = not payload_dir.exists()
    if parallel is None:
        parallel = rows * _TOKENS_PER_ROW[shape] >= _PARALLEL_TOKENS
    tables = tables_for(epoch, ddl=True)
    engine = create_engine(f"sqlite:///{out}")
    # pysqlite runs DDL in autocommit, one synced transaction per CREATE; skip the syncing.
    event.listen(engine, "connect", _unsynced)
    try:
        tables.metadata.create_all(engine)
        indexes = [(str(index.name), str(CreateIndex(index).compile(dialect=engine.dialect)))
                   for table in tables.metadata.sorted_tables for index in table.indexes]
    finally:
        engine.dispose()
    rows_sink: RowSink = (ProcessRows if parallel else InlineRows)(str(out), indexes, epoch)
    files_sink: FileSink = ProcessFiles() if parallel else InlineFiles()
    rand = Rand(seed)
    store = PayloadStore(payload_dir, files_sink)
    rec = Recorder(rows_sink, epoch, rand, Clock(rand), store, scheduler_events=scheduler_events)
    try:
        runs, tokens = _record(rec, shape, rows)
    except BaseException:
        rec.close(commit=False)
        store.close(commit=False)
        for path in _sidecars(out):
            path.unlink(missing_ok=True)
        if created_store:
            shutil.rmtree(payload_dir, ignore_errors=True)
        raise
    rec.close()
    store.close()
    with closing(sqlite3.connect(out)) as conn:
        counts = {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
                  for name in sorted(tables.metadata.tables)}
    return GenerationReport(
        db_path=out, payload_dir=payload_dir, epoch=epoch, shape=shape, seed=seed, rows=rows,
        run_ids=tuple(runs.values()), runs=MappingProxyType(runs), counts=MappingProxyType(counts),
        tokens=MappingProxyType(tokens), payload_files=store.count)


def _record(rec: Recorder, shape: str, rows: int) -> tuple[dict[str, str], dict[str, str]]:
    runs: dict[str, str] = {}
    tokens: dict[str, str] = {}
    if rec.e29:
        rec.add("elspeth_schema_identity", singleton_id=1, application_id="elspeth", store_kind="landscape",
                schema_epoch=rec.epoch)
    for name, pipeline, size in _SHAPES[shape]:
        run, cases = pipeline(rec, size(rows))
        runs[name] = run.run_id
        for case, token_id in cases.items():
            tokens.setdefault(case, token_id)
        rec.clock.us += 60_000_000  # runs a minute apart
    return runs, tokens
