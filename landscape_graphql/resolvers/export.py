"""A run's records for scripts: the page behind `Run.exportRecords`.

No DataLoader: a page is one keyset statement per record type for one run, never batched with
another object's, so a loader would only add a hop.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..canonical import canonical_columns
from ..context import Context
from ..db.export import ExportCursor, export_page
from ._paging import page_request


@dataclass(frozen=True, slots=True)
class ExportedRecord:
    record_type: str
    canonical: str


@dataclass(frozen=True, slots=True)
class ExportedPage:
    record_types: list[str]
    lines: list[bytes]  # each record's RFC 8785 canonical JSON
    end_cursor: str | None
    has_next_page: bool
    start_cursor: str | None

    @property
    def records(self) -> list[ExportedRecord]:
        return [ExportedRecord(t, line.decode()) for t, line in zip(self.record_types, self.lines, strict=True)]

    def jsonl(self) -> str:
        return (b"\n".join(self.lines) + b"\n").decode() if self.lines else ""


async def export_records(context: Context, run_id: str, first: int | None, after: str | None) -> ExportedPage:
    _, size = page_request(context.settings, first, after, None, None, "Run.exportRecords")
    context.cacheable = False
    cursor = ExportCursor.decode(after) if after else None
    page = await export_page(context.db, run_id, cursor, size)
    types: list[str] = []
    lines: list[bytes] = []
    for segment in page.segments:
        types += [segment.record_type] * len(segment.rows)
        lines += canonical_columns(segment.keys, segment.json_columns())[0]
    end = page.end_cursor.encode() if page.end_cursor is not None and lines else None
    return ExportedPage(types, lines, end, page.has_next_page, after)
