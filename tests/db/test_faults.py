"""The database misbehaving, for real: locks, appends, exhaustion, slow queries, vanishing files.

Each fault is reproduced against a private copy of a fixture and the test asserts the error
code a client gets and that the server recovers without a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.db.engine import EngineOptions, open_landscape
from landscape_graphql.db.session import DbSession
from landscape_graphql.errors import QueryTimeout
from tests.conftest import FIXTURES, Api, truth
from tests.live_server import serve

FC2 = truth(2, "fork-coalesce")["runs"][0]
TOKENS_QUERY = "query ($r: String!) { run(runId: $r) { tokens(first: 5) { nodes { tokenId } } } }"


def _copy(tmp_path: Path, name: str = "fork-coalesce", epoch: int = 2) -> Path:
    db = tmp_path / f"{name}.db"
    shutil.copy2(FIXTURES / f"epoch{epoch}" / f"{name}.db", db)
    return db


def _post(url: str, query: str, variables: dict[str, object]) -> dict[str, object]:
    return httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30).json()  # type: ignore[no-any-return]


def _code(body: dict[str, object]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None  # type: ignore[index]


async def test_a_writers_lock_gives_database_busy_then_recovers(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # a rollback-journal database, as some sites run
    landscape = await open_landscape(str(db), EngineOptions(busy_timeout_s=0.3))
    api = Api(landscape)
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        result = await api.run(TOKENS_QUERY, {"r": FC2["run_id"]})
        waited = time.monotonic() - started
        assert [e["extensions"]["code"] for e in result.errors] == ["DATABASE_BUSY"]
        assert 0.25 <= waited < 5, waited
        writer.execute("ROLLBACK")
        recovered = await api.run(TOKENS_QUERY, {"r": FC2["run_id"]})
        assert not recovered.errors and len(recovered.data["run"]["tokens"]["nodes"]) == 5
    finally:
        writer.close()
        api.counter.close()
        await landscape.dispose()


async def test_the_event_loop_keeps_turning_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    # Statements may start on the loop's thread; waiting for a lock must not happen there, or
    # /livez and every other request would stall for the whole busy timeout.
    db = _copy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    landscape = await open_landscape(str(db), EngineOptions(busy_timeout_s=1.0))
    api = Api(landscape)
    writer = sqlite3.connect(db, isolation_level=None)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    try:
        writer.execute("BEGIN EXCLUSIVE")
        result = await api.run(TOKENS_QUERY, {"r": FC2["run_id"]})
        assert [e["extensions"]["code"] for e in result.errors] == ["DATABASE_BUSY"]
        # ~100 ticks fit in the one-second wait; a blocked loop gets at most one or two.
        assert ticks >= 30, ticks
    finally:
        beating.cancel()
        writer.close()
        api.counter.close()
        await landscape.dispose()


async def test_statements_over_the_inline_budget_answer_the_same_from_the_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from landscape_graphql.db import session

    landscape = await open_landscape(str(_copy(tmp_path)))
    api = Api(landscape)
    query = """query ($r: String!) { run(runId: $r) { tokens(first: 50) { nodes {
        tokenId nodeStates { stateId status } outcome { rowOutcome } parents { tokenId } } } } }"""
    try:
        inline = await api.run(query, {"r": FC2["run_id"]})
        # Every statement now overruns its budget at the first progress-handler check.
        monkeypatch.setattr(session, "INLINE_BUDGET_S", -1.0)
        threaded = 0
        real = session.DbSession._execute_driver_sql

        async def counting(self: Any, *args: Any) -> Any:
            nonlocal threaded
            threaded += 1
            return await real(self, *args)

        monkeypatch.setattr(session.DbSession, "_execute_driver_sql", counting)
        moved = await api.run(query, {"r": FC2["run_id"]})
        assert threaded >= 4  # the page and its three relations at least
        assert not inline.errors and not moved.errors
        assert moved.data == inline.data and len(inline.data["run"]["tokens"]["nodes"]) == 50
        # the abandoned attempts are neither counted nor seen by statement listeners
        assert moved.statements == inline.statements == moved.cost["sqlStatements"]
    finally:
        api.counter.close()
        await landscape.dispose()


async def test_pages_taken_while_elspeth_appends_neither_repeat_nor_skip(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    landscape = await open_landscape(str(db))
    api = Api(landscape)
    writer = sqlite3.connect(db)
    try:
        original = {r[0] for r in writer.execute("SELECT token_id FROM tokens WHERE run_id = ?", (FC2["run_id"],))}
        row_id = writer.execute("SELECT row_id FROM rows WHERE run_id = ? LIMIT 1", (FC2["run_id"],)).fetchone()[0]
        seen: list[str] = []
        after = None
        appended = 0
        while True:
            data = await api.ok("""query ($r: String!, $a: String) { run(runId: $r) {
                tokens(first: 97, after: $a) { pageInfo { hasNextPage endCursor } nodes { tokenId } } } }""",
                                {"r": FC2["run_id"], "a": after})
            page = data["run"]["tokens"]
            seen += [n["tokenId"] for n in page["nodes"]]
            # ELSPETH appends between our pages: ids land before and after the cursor.
            with writer:
                for _ in range(7):
                    writer.execute(
                        "INSERT INTO tokens (token_id, row_id, run_id, created_at) VALUES (?, ?, ?, '2026-11-22 02:00:00.000000')",
                        (uuid.uuid4().hex, row_id, FC2["run_id"]))
                    appended += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert appended > 50
        assert len(seen) == len(set(seen)), "a token was returned twice"
        assert original <= set(seen), "a token that existed before paging began was skipped"
    finally:
        writer.close()
        api.counter.close()
        await landscape.dispose()


async def test_pool_exhaustion_waits_a_bounded_time_then_errors(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    landscape = await open_landscape(str(db), EngineOptions(pool_size=1, pool_timeout_s=0.3))
    api = Api(landscape)
    try:
        async with landscape.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            result = await asyncio.wait_for(api.run(TOKENS_QUERY, {"r": FC2["run_id"]}), 10)
            assert time.monotonic() - started < 5
            assert [e["extensions"]["code"] for e in result.errors] == ["DATABASE_BUSY"]
            assert "connections are in use" in result.errors[0]["message"]
        recovered = await api.run(TOKENS_QUERY, {"r": FC2["run_id"]})
        assert not recovered.errors
    finally:
        api.counter.close()
        await landscape.dispose()


SLOW_SQL = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000000) "
            "SELECT count(*) FROM n")


async def test_a_slow_query_is_interrupted_at_the_deadline_and_the_connection_stays_healthy(tmp_path: Path) -> None:
    db = _copy(tmp_path, "llm-calls")
    landscape = await open_landscape(str(db), EngineOptions(pool_size=1))
    try:
        session = DbSession(landscape, timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            await session.all(text(SLOW_SQL))
        assert time.monotonic() - started < 3, "the SQLite thread must be interrupted, not left running"
        # the only pooled connection is reused, and works
        fresh = DbSession(landscape, timeout_s=5)
        rows = await fresh.all(text("SELECT count(*) FROM runs"))
        assert rows[0][0] == 1
    finally:
        await landscape.dispose()


async def test_request_timeout_reaches_the_database_through_the_api(tmp_path: Path) -> None:
    from landscape_graphql.settings import Settings
    db = _copy(tmp_path)
    landscape = await open_landscape(str(db))
    api = Api(landscape, Settings(request_timeout_s=0.0005))
    try:
        result = await api.run("query ($r: String!) { run(runId: $r) { tokens(first: 500) { totalCount nodes { "
                               "nodeStates { stateId } outcome { path } parents { tokenId } } } } }",
                               {"r": FC2["run_id"]})
        assert {e["extensions"]["code"] for e in result.errors} == {"TIMEOUT"}
    finally:
        api.counter.close()
        await landscape.dispose()


@pytest.fixture
def served_copy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = _copy(tmp_path)
    with serve(create_app(AppConfig(database=str(db)))) as url:
        yield url, db


def test_database_deleted_then_restored_while_serving(served_copy: tuple[str, Path]) -> None:
    url, db = served_copy
    variables = {"r": FC2["run_id"]}
    assert _code(_post(url, TOKENS_QUERY, variables)) is None
    backup = db.with_suffix(".bak")
    db.rename(backup)
    gone = _post(url, TOKENS_QUERY, variables)
    assert _code(gone) == "DATABASE_UNAVAILABLE" and gone["data"] is None
    assert httpx.get(f"{url}/readyz").status_code == 503
    assert httpx.get(f"{url}/livez").status_code == 200
    backup.rename(db)
    assert _code(_post(url, TOKENS_QUERY, variables)) is None
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_database_replaced_while_serving_is_followed(served_copy: tuple[str, Path]) -> None:
    url, db = served_copy
    old_run = FC2["run_id"]
    assert _post(url, "{ runs { nodes { runId } } }", {})["data"] == {"runs": {"nodes": [{"runId": old_run}]}}
    replacement = db.with_suffix(".new")
    shutil.copy2(FIXTURES / "epoch2" / "llm-calls.db", replacement)
    replacement.replace(db)  # atomic rename over the served file: a new inode
    new_run = truth(2, "llm-calls")["runs"][0]["run_id"]
    assert _post(url, "{ runs { nodes { runId } } }", {})["data"] == {"runs": {"nodes": [{"runId": new_run}]}}


def test_database_replaced_by_another_epoch_is_refused(served_copy: tuple[str, Path]) -> None:
    url, db = served_copy
    replacement = db.with_suffix(".new")
    shutil.copy2(FIXTURES / "epoch29" / "llm-calls.db", replacement)
    replacement.replace(db)
    body = _post(url, "{ runs { totalCount } }", {})
    assert _code(body) == "DATABASE_UNAVAILABLE"
    assert "epoch 29" in body["errors"][0]["message"]  # type: ignore[index]


def test_corrupt_file_while_serving_gives_a_clear_error_and_the_server_stays_up(served_copy: tuple[str, Path]) -> None:
    url, db = served_copy
    with db.open("r+b") as handle:  # our private copy: overwrite pages past the header
        handle.seek(8192)
        handle.write(b"\xde\xad\xbe\xef" * 50_000)
    body = _post(url, """query ($r: String!) { run(runId: $r) { tokens(first: 500) { totalCount
        nodes { nodeStates { stateId } outcome { path } } } } }""", {"r": FC2["run_id"]})
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}  # type: ignore[union-attr]
    assert codes and codes <= {"DATABASE_UNAVAILABLE", "AUDIT_INTEGRITY"}, body.get("errors")
    assert "Traceback" not in str(body) and "SELECT" not in str(body)
    assert httpx.get(f"{url}/livez").status_code == 200


@pytest.mark.parametrize("timeout_s", [0.5, 1.5])
async def test_a_slow_prepared_statement_answers_at_the_deadline_not_later(tmp_path: Path, timeout_s: float) -> None:
    # Prepared statements start on the loop's thread with an inline budget, then rerun on
    # aiosqlite's: the rerun must get what is left of the deadline, not the whole of it again.
    from landscape_graphql.db.session import prepare
    db = _copy(tmp_path, "llm-calls")
    landscape = await open_landscape(str(db), EngineOptions(pool_size=1))
    try:
        statement = prepare(text(SLOW_SQL), landscape.engine.dialect, ())
        session = DbSession(landscape, timeout_s=timeout_s)
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            await session.fetch(statement, {})
        late = time.monotonic() - started - timeout_s
        assert late < 0.1, f"answered {late:.3f} s after the deadline"
    finally:
        await landscape.dispose()

