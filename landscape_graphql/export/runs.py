"""The run preset: which run, whether it may be exported, and the source that reads it.

In-process the run is read table by table (`RunTableSource`); over HTTP through the API's
`Run.exportRecords` connection. Both give the same records in the same order for the same
database, so the same run gives the same bytes and root either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..db.export import json_value, record_types
from ..limits import DEFAULT_QUERY_LIMITS
from .manifest import ExportError
from .sources import ConnectionSpec, Executor, QuerySource, RunTableSource, Source

TERMINAL = frozenset({"completed", "completed_with_failures", "failed", "empty", "interrupted"})

RUN_INFO_QUERY = """query ($r: String!) { landscape { epoch backend }
  run(runId: $r) { runId status completedAt } }"""
RUN_EXPORT_QUERY = """query ($r: String!, $first: Int, $after: String) { run(runId: $r) {
  exportRecords(first: $first, after: $after) { pageInfo { hasNextPage endCursor } jsonl } } }"""


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    status: str
    completed_at: str | None
    epoch: int
    backend: str


def check_exportable(info: RunInfo, allow_running: bool) -> None:
    if info.status not in TERMINAL and not allow_running:
        raise ExportError(f"run {info.run_id} is {info.status}: its trail is still growing. Export a finished "
                          "run, or pass --allow-running (the manifest then says it was running)")


async def run_info_local(landscape: Any, run_id: str) -> RunInfo:
    from ..db.session import DbSession
    runs = landscape.tables.runs
    rows = await DbSession(landscape).all(select(runs.c.status, runs.c.completed_at).where(runs.c.run_id == run_id))
    if not rows:
        raise ExportError(f"no run {run_id} in this database")
    status, completed = rows[0]
    return RunInfo(run_id, str(status), json_value(completed), landscape.epoch, landscape.backend)


async def run_info_http(execute: Executor, run_id: str) -> RunInfo:
    answer = await execute(RUN_INFO_QUERY, {"r": run_id})
    if answer.get("errors"):
        raise ExportError(f"the server refused: {answer['errors'][0].get('message')}")
    data = answer["data"]
    if data.get("run") is None:
        raise ExportError(f"no run {run_id} on that server (or not one this token may see)")
    run = data["run"]
    return RunInfo(run_id, str(run["status"]).lower(), run["completedAt"], data["landscape"]["epoch"],
                   data["landscape"]["backend"])


def http_page_size() -> int:
    """The largest page a server with the default limits serves on `Run.exportRecords`."""
    return DEFAULT_QUERY_LIMITS.page_size_limit("Run.exportRecords")


def local_source(landscape: Any, run_id: str, page_size: int, with_payloads: Any = None) -> Source:
    return RunTableSource(landscape, run_id, page_size, with_payloads)


def http_source(execute: Executor, run_id: str, page_size: int) -> Source:
    spec = ConnectionSpec(["run", "exportRecords"], False)
    return QuerySource(execute, RUN_EXPORT_QUERY, {"r": run_id, "first": page_size}, spec, lines_field="jsonl")


def csv_columns(epoch: int) -> list[str]:
    """record_type, then every column of every record type in export order (first seen)."""
    from ..db.tables import tables_for
    cols = ["record_type"]
    for rtype in record_types(tables_for(epoch)):
        for name in (str(column.name) for column in rtype.table.c):
            if name not in cols:
                cols.append(name)
    return cols
