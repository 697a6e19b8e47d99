"""The statements behind `diagnose`: ELSPETH's health rules over the whole database.

The clock is a parameter (`as_of`), never the wall clock, so one database and one instant always
give one answer. `allowed` (a scoped principal's runs) limits every rule to those runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from . import analytics_records as A
from .session import DbSession

RECENT_RUNS = 10


def _utc(instant: datetime) -> datetime:
    # SQLite stores naive UTC text and compares as text: bind a UTC instant. A naive asOf is UTC.
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


async def diagnose_facts(db: DbSession, as_of: datetime, *, stuck_after: timedelta, validation_threshold: int,
                         quarantine_window: timedelta, allowed: frozenset[str] | None) -> A.DiagnoseFacts:
    t = db.tables
    runs, ops, verr, outcomes = t.runs, t.operations, t.validation_errors, t.token_outcomes
    now = _utc(as_of)
    stuck_before = now - stuck_after
    window_start = now - quarantine_window

    def visible(column: Any) -> list[ColumnElement[bool]]:
        return [] if allowed is None else [column.in_(sorted(allowed))]

    async def ids(stmt: Select[Any]) -> list[str]:
        return [r[0] for r in await db.all(stmt)]

    async def flags(stmt: Select[Any]) -> list[A.RunFlag]:
        return [A.RunFlag(r[0], r[1]) for r in await db.all(stmt)]

    newest = (runs.c.started_at.desc(), runs.c.run_id.desc())
    failed = await ids(select(runs.c.run_id).where(runs.c.status == "failed", *visible(runs.c.run_id))
                       .order_by(*newest))
    stuck_runs = await ids(select(runs.c.run_id)
                           .where(runs.c.status == "running", runs.c.completed_at.is_(None),
                                  runs.c.started_at < stuck_before, *visible(runs.c.run_id))
                           .order_by(*newest))
    stuck_ops = await ids(select(ops.c.operation_id)
                          .where(ops.c.status == "open", ops.c.started_at < stuck_before, *visible(ops.c.run_id))
                          .order_by(ops.c.started_at, ops.c.operation_id))
    finished: Sequence[str] = ("completed", "completed_with_failures") if db.epoch >= 29 else ("completed",)
    errors = func.count(verr.c.error_id)
    high = await flags(select(runs.c.run_id, errors)
                       .select_from(runs.join(verr, verr.c.run_id == runs.c.run_id))
                       .where(runs.c.status.in_(finished), *visible(runs.c.run_id))
                       .group_by(runs.c.run_id).having(errors > validation_threshold)
                       .order_by(errors.desc(), runs.c.run_id))
    quarantined_cond = (outcomes.c.path == "quarantined_at_source" if db.epoch >= 29
                        else outcomes.c.outcome == "quarantined")
    quarantined = await flags(select(runs.c.run_id, func.count())
                              .select_from(runs.join(outcomes, outcomes.c.run_id == runs.c.run_id))
                              .where(runs.c.started_at >= window_start, quarantined_cond, *visible(runs.c.run_id))
                              .group_by(runs.c.run_id).order_by(runs.c.run_id))
    recent = await ids(select(runs.c.run_id).where(*visible(runs.c.run_id)).order_by(*newest).limit(RECENT_RUNS))
    return A.DiagnoseFacts(failed_runs=failed, stuck_runs=stuck_runs, stuck_operations=stuck_ops,
                           high_validation_errors=high, quarantined=quarantined, recent_runs=recent)
