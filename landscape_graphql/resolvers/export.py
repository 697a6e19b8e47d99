"""A run's records for scripts: the page behind `Run.exportRecords`.

No DataLoader: a page is one keyset statement per record type for one run, never batched with
another object's, so a loader would only add a hop.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..canonical import canonical
from ..context import Context
from ..db.export import ExportCursor, export_page
from ._paging import page_request


@dataclass(frozen=True, slots=True)
class ExportedRecord:
    record_type: str
    canonical: str


@dataclass(frozen=True, slots=True)
class ExportedPage:
    records: list[ExportedRecord]
    end_cursor: str | None
    has_next_page: bool
    start_cursor: str | None


async def export_records(context: Context, run_id: str, first: int | None, after: str | None) -> ExportedPage:
    _, size = page_request(context.settings, first, after, None, None)
    cursor = ExportCursor.decode(after) if after else None
    page = await export_page(context.db, run_id, cursor, size, as_json=True)
    records = [ExportedRecord(t, canonical(values).decode()) for t, values in page.records]
    end = page.end_cursor.encode() if page.end_cursor is not None and records else None
    return ExportedPage(records, end, page.has_next_page, after)
