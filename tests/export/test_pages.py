"""The run export's access order: each table in storage order, constant statements per page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import sqlite

from landscape_graphql.db.engine import Landscape
from landscape_graphql.db.export import ExportCursor, _page_statement, export_page, record_types
from landscape_graphql.db.session import DbSession
from landscape_graphql.db.tables import tables_for


def test_sqlite_pages_never_sort(fixture_copies: Path) -> None:
    import sqlite3
    for epoch, name in ((2, "fork-coalesce"), (29, "fork-coalesce")):
        tables = tables_for(epoch)
        conn = sqlite3.connect(f"file:{fixture_copies / f'epoch{epoch}' / f'{name}.db'}?mode=ro", uri=True)
        for rtype in record_types(tables):
            for continued in (False, True):
                compiled = _page_statement(rtype, tables, "sqlite", continued).compile(dialect=sqlite.dialect())
                params = [{"run_id": "r", "after_0": 1, "limit": 10}.get(n) for n in compiled.positiontup or ()]
                plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + compiled.string, params))
                # a sort per page would make the export quadratic
                assert "TEMP B-TREE" not in plan, (rtype.name, plan)
        conn.close()


async def test_statements_per_page_are_bounded(landscapes: dict[tuple[int, str], Landscape]) -> None:
    for key in ((2, "fork-coalesce"), (29, "fork-coalesce")):
        landscape = landscapes[key]
        run_id = (await DbSession(landscape).all(landscape.tables.runs.select()))[0].run_id
        types = len(record_types(landscape.tables))
        after: ExportCursor | None = None
        pages = total = 0
        while True:
            db = DbSession(landscape)
            page = await export_page(db, run_id, after, 97)
            assert db.statements <= types and len(page.records) <= 97
            pages += 1
            total += len(page.records)
            after = page.end_cursor
            if not page.has_next_page:
                break
        assert pages == -(-total // 97) or pages == total // 97 + 1
