"""Records mapped by position (the queries' path) equal those `*_from_row` maps by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import null, select

from landscape_graphql.db import records as R
from landscape_graphql.db.engine import open_landscape
from landscape_graphql.errors import AuditIntegrityError
from tests.conftest import SQLITE_FIXTURES

MAPPERS = [
    (R.RunRecord, "runs", R.run_from_row), (R.NodeRecord, "nodes", R.node_from_row),
    (R.EdgeRecord, "edges", R.edge_from_row), (R.RowRecord, "rows", R.row_from_row),
    (R.TokenRecord, "tokens", R.token_from_row), (R.NodeStateRecord, "node_states", R.node_state_from_row),
    (R.RoutingEventRecord, "routing_events", R.routing_event_from_row), (R.CallRecord, "calls", R.call_from_row),
    (R.OperationRecord, "operations", R.operation_from_row), (R.ArtifactRecord, "artifacts", R.artifact_from_row),
    (R.BatchRecord, "batches", R.batch_from_row),
    (R.ValidationErrorRecord, "validation_errors", R.validation_error_from_row),
    (R.TransformErrorRecord, "transform_errors", R.transform_error_from_row),
    (R.CheckpointRecord, "checkpoints", R.checkpoint_from_row),
    (R.PreflightResultRecord, "preflight_results", R.preflight_from_row),
    (R.SchedulerEventRecord, "scheduler_events", R.scheduler_event_from_row),
]


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES))
async def test_every_record_of_every_fixture(fixture_copies: Path, epoch: int, name: str) -> None:
    landscape = await open_landscape(str(fixture_copies / f"epoch{epoch}" / f"{name}.db"))
    compared = 0
    try:
        async with landscape.engine.connect() as conn:
            for cls, table_name, by_name in MAPPERS:
                table = getattr(landscape.tables, table_name)
                if table is None:
                    continue
                rows = (await conn.execute(select(table))).all()
                columns = [table.c[c] if c in table.c else null().label(c) for c in R.COLUMNS[cls]]
                sql = str(select(*columns).compile(dialect=landscape.engine.dialect))
                raw = (await conn.exec_driver_sql(sql)).all()  # text timestamps, as the queries get them
                expected = [by_name(r, landscape.epoch) for r in rows]
                got = [R.record_from_tuple(cls, tuple(r), landscape.epoch) for r in raw]
                assert got == expected, table_name
                # equal and of the same types (an aware datetime is not equal to a naive one)
                assert [repr(g) for g in got] == [repr(e) for e in expected], table_name
                compared += len(got)
    finally:
        await landscape.dispose()
    assert compared > 100


def test_broken_rows_raise_the_same_errors() -> None:
    token = ("t1", "r1", "run", "f", "j", None, None, None, None, "2026-01-01 00:00:00.000000")
    with pytest.raises(AuditIntegrityError) as positional:
        R.token_from_tuple(token, 29)
    assert "at most one of fork_group_id" in positional.value.message

    state = ("s1", "t1", "run", "n", 1, 0, "exploded", "h", None, None, None, None, None, None,
             "2026-01-01 00:00:00.000000", None)
    with pytest.raises(AuditIntegrityError) as err:
        R.record_from_tuple(R.NodeStateRecord, state, 29)
    assert err.value.record == "node_states[s1]" and "status must be one of" in err.value.rule

    call = ("c1", None, None, 0, "http", "success", "h", None, None, None, None, None, None,
            "2026-01-01 00:00:00.000000")
    with pytest.raises(AuditIntegrityError, match="exactly one parent"):
        R.call_from_tuple(call, 29)

    # a timestamp with an offset is parsed as written, not forced to UTC
    assert R.ts_value("2026-01-01 01:00:00+01:00").isoformat() == "2026-01-01T01:00:00+01:00"
    assert R.ts_value("2026-01-01 01:00:00.000001").isoformat() == "2026-01-01T01:00:00.000001+00:00"
