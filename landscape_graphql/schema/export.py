"""GraphQL types of a run's export records (`Run.exportRecords`)."""

from __future__ import annotations

import orjson
import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..resolvers.export import ExportedPage, ExportedRecord
from .relay import PageInfo


@strawberry.type(description="One record of a run as stored, typed as ELSPETH's exporter names it "
                             "(run, node, edge, operation, call, row, token, token_parent, …).")
class ExportRecord:
    record_type: str
    canonical: str = strawberry.field(
        description="The record as RFC 8785 canonical JSON, with record_type and every stored column "
                    "(times ISO 8601 UTC): the bytes `landscape-graphql export` hashes and signs.")

    @strawberry.field(description="The same record as a JSON object.")
    @staticmethod
    def json(parent: Parent[ExportedRecord]) -> JSON:
        value: JSON = orjson.loads(parent.canonical)
        return value


@strawberry.type(description="A run's records table by table in storage order (SQLite rowid, PostgreSQL "
                             "primary key): constant work per page, for scripted export.")
class ExportRecordConnection:
    page: strawberry.Private[ExportedPage]

    @strawberry.field(graphql_type="list[ExportRecord]")
    def nodes(self) -> list[ExportedRecord]:
        return self.page.records

    @strawberry.field(description="The page's records as JSON lines: each record's `canonical` form and a "
                                  "newline, in order. One string for the page, so a large page costs no "
                                  "object per record to resolve, send or parse (what `landscape-graphql "
                                  "export --url` reads).")
    def jsonl(self) -> str:
        return self.page.jsonl()

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo(has_next_page=self.page.has_next_page, has_previous_page=self.page.start_cursor is not None,
                        start_cursor=self.page.start_cursor, end_cursor=self.page.end_cursor)
