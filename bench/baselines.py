"""What each scenario is compared with, written with plain sqlite3 and orjson."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


class ExplainOneByOne:
    """ELSPETH's explain(), token after token: its statements, in its order.

    Per token: the token, its row, its node states, then for each state its routing events and
    its calls, the token's parents, the row's validation errors, the token's transform errors and
    its outcomes (~10 statements for a fork/coalesce token). Each answer becomes a dict and the
    whole batch one JSON document, as the API's response is.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements = 0

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.statements += 1
        return _dicts(self.conn.execute(sql, args))

    def explain(self, token_id: str) -> dict[str, Any] | None:
        tokens = self._all("SELECT * FROM tokens WHERE token_id = ?", token_id)
        if not tokens:
            return None
        token = tokens[0]
        rows = self._all("SELECT * FROM rows WHERE row_id = ?", token["row_id"])
        states = self._all("SELECT * FROM node_states WHERE token_id = ? ORDER BY step_index, attempt",
                           token_id)
        routing: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for state in states:
            routing += self._all("SELECT * FROM routing_events WHERE state_id = ? ORDER BY ordinal",
                                 state["state_id"])
            calls += self._all("SELECT * FROM calls WHERE state_id = ? ORDER BY call_index", state["state_id"])
        parents = self._all("SELECT t.* FROM token_parents p JOIN tokens t ON t.token_id = p.parent_token_id "
                            "WHERE p.token_id = ? ORDER BY p.ordinal", token_id)
        row = rows[0] if rows else None
        validation = self._all("SELECT * FROM validation_errors WHERE row_id = ?", token["row_id"])
        if not validation and row is not None:
            validation = self._all("SELECT * FROM validation_errors WHERE row_id IS NULL AND row_hash = ? "
                                   "AND run_id = ?", row["source_data_hash"], row["run_id"])
        transform = self._all("SELECT * FROM transform_errors WHERE token_id = ? ORDER BY created_at",
                              token_id)
        outcomes = self._all("SELECT * FROM token_outcomes WHERE token_id = ? ORDER BY recorded_at",
                             token_id)
        return {"token": token, "row": row, "nodeStates": states, "routingEvents": routing, "calls": calls,
                "parents": parents, "validationErrors": validation, "transformErrors": transform,
                "outcomes": outcomes}

    def explain_all(self, token_ids: list[str]) -> bytes:
        return orjson.dumps([self.explain(t) for t in token_ids])


# The records the export scenario pages through, as plain SELECTs of the run.
EXPORT_TABLES = {
    "tokens": "SELECT * FROM tokens WHERE run_id = ?",
    "node_states": "SELECT * FROM node_states WHERE run_id = ?",
    "token_outcomes": "SELECT * FROM token_outcomes WHERE run_id = ?",
    "token_parents": "SELECT p.* FROM token_parents p JOIN tokens t ON t.token_id = p.token_id "
                     "WHERE t.run_id = ?",
    "calls": "SELECT c.* FROM calls c WHERE EXISTS (SELECT 1 FROM node_states s WHERE s.state_id = c.state_id "
             "AND s.run_id = ?1) OR EXISTS (SELECT 1 FROM operations o WHERE o.operation_id = c.operation_id "
             "AND o.run_id = ?1)",
    "validation_errors": "SELECT * FROM validation_errors WHERE run_id = ?",
    "transform_errors": "SELECT * FROM transform_errors WHERE run_id = ?",
}


def export_floor(conn: sqlite3.Connection, run_id: str, chunk: int = 20_000) -> tuple[int, int]:
    """Every record of the run as dicts, serialised with orjson in chunks: (records, bytes)."""
    records = size = 0
    for sql in EXPORT_TABLES.values():
        for batch in _chunks(conn.execute(sql, (run_id,)), chunk):
            records += len(batch)
            size += len(orjson.dumps(batch))
    return records, size


def _chunks(cursor: sqlite3.Cursor, size: int) -> Iterator[list[dict[str, Any]]]:
    names = [d[0] for d in cursor.description]
    while rows := cursor.fetchmany(size):
        yield [dict(zip(names, row, strict=True)) for row in rows]
