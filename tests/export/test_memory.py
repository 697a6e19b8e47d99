"""An in-process run export holds one page at a time: its peak memory does not grow with the run.

Measured with tracemalloc (Python's own allocations, deterministic for the same records), not
RSS: two generated runs, the second ten times the first, exported with the same page size.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from landscape_graphql.db.engine import open_landscape
from landscape_graphql.demo import generate
from landscape_graphql.export.formats import make_format
from landscape_graphql.export.sources import RunTableSource
from landscape_graphql.export.writer import ExportWriter

PAGE = 200


async def export_peak(db: Path, out: Path) -> tuple[int, int, int]:
    """(records, peak bytes allocated above what was held before the first page, growth of what
    is held between pages from the first page to the last)."""
    landscape = await open_landscape(str(db))
    try:
        rows = await landscape.engine.connect()
        from sqlalchemy import text
        run_id = (await rows.execute(text("SELECT run_id FROM runs"))).scalar_one()
        await rows.close()
        source = RunTableSource(landscape, run_id, PAGE)
        writer = ExportWriter(out, make_format("jsonl"), "test", checkpoint_every_s=0)
        cursor = None
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            held: list[int] = []
            while True:
                page = await source.page(cursor)
                writer.write_page(page.lines, page.objects, page.end_cursor)
                cursor = page.end_cursor
                more = page.has_next_page
                del page
                held.append(tracemalloc.get_traced_memory()[0])
                if not more:
                    break
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        writer.finish()
        return writer.records, peak, max(held) - held[0]
    finally:
        await landscape.dispose()


@pytest.mark.parametrize("epoch", [29])
async def test_export_memory_is_flat(epoch: int, tmp_path: Path) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    generate(small, epoch=epoch, rows=200, seed=3, shape="fork_coalesce", scheduler_events=False)
    generate(large, epoch=epoch, rows=2000, seed=3, shape="fork_coalesce", scheduler_events=False)
    # Statements are compiled once per shape and kept: a shape the small run never needed (a
    # table's second page) would count against the large one. One export first compiles them all.
    await export_peak(large, tmp_path / "warm.jsonl")
    small_records, small_peak, _ = await export_peak(small, tmp_path / "small.jsonl")
    large_records, large_peak, large_growth = await export_peak(large, tmp_path / "large.jsonl")
    # More than one chunk of 2^16 records in the large run, so closed chunks are in it too.
    assert large_records >= 9 * small_records and large_records > 65_536
    # Nothing is kept per record: what is held between pages (the open chunk's leaf hashes, at
    # most one 1,024-leaf block, and 32 bytes per closed block and chunk) stays under 512 KB
    # over 70,000+ records; keeping each record's 32-byte leaf would add over 4 MB.
    assert large_growth < 512 * 1024, large_growth
    # A page's transient objects differ with its records' sizes, never with the run's length.
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
