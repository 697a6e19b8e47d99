"""/readyz under load: answered from what the requests' statements showed, probing only when they
showed nothing lately, and never behind SQLite work that runs off the event loop's thread.

(tests/db/test_faults.py and test_postgres_faults.py have the faults /readyz must report.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from landscape_graphql._readiness import FRESH_S
from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.db.engine import OFF_LOOP_NICENESS, EngineOptions, Landscape, open_landscape
from landscape_graphql.db.session import DbSession
from landscape_graphql.errors import DatabaseUnavailable
from tests.conftest import FIXTURES

QUERY = {"query": "{ runs { totalCount } }"}


@pytest.fixture
async def landscape(tmp_path: Path) -> AsyncIterator[Landscape]:
    db = tmp_path / "fork-coalesce.db"
    shutil.copy2(FIXTURES / "epoch2" / "fork-coalesce.db", db)
    opened = await open_landscape(str(db), EngineOptions(pool_size=2))
    try:
        yield opened
    finally:
        await opened.dispose()


def _count_statements(landscape: Landscape) -> list[str]:
    seen: list[str] = []

    @event.listens_for(landscape.engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    return seen


def _client(landscape: Landscape) -> httpx.AsyncClient:
    app = create_app(AppConfig(database="unused"), landscape=landscape)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_readyz_right_after_an_answer_runs_no_statement(landscape: Landscape) -> None:
    seen = _count_statements(landscape)
    async with _client(landscape) as client:
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        before = len(seen)
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert seen[before:] == []


async def test_readyz_probes_when_nothing_answered_lately_and_its_probe_counts(landscape: Landscape) -> None:
    seen = _count_statements(landscape)
    async with _client(landscape) as client:
        first = await client.get("/readyz")  # nothing has run since the server opened
        probed = len(seen)
        second = await client.get("/readyz")
    assert first.status_code == 200 and second.status_code == 200
    assert probed == 1
    assert len(seen) == probed  # the probe's answer is the next one's evidence


async def test_readyz_probes_after_a_statement_found_the_database_unavailable(landscape: Landscape) -> None:
    seen = _count_statements(landscape)
    async with _client(landscape) as client:
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        with pytest.raises(DatabaseUnavailable):  # "no such table": the file cannot be read as a Landscape
            await DbSession(landscape).all(text("SELECT 1 FROM no_such_table"))
        activity = landscape.activity
        assert activity.failed_at is not None and activity.answered_at is not None
        assert activity.failed_at > activity.answered_at
        before = len(seen)
        ready = await client.get("/readyz")
    # The earlier answer is no evidence any more: /readyz asked the database itself.
    assert len(seen) == before + 1
    assert ready.status_code == 200


async def test_readyz_answers_at_once_while_every_pool_connection_is_busy(landscape: Landscape) -> None:
    async with _client(landscape) as client:
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        await asyncio.sleep(FRESH_S + 0.1)  # not fresh any more: only the busy pool's rule applies
        held = [await landscape.engine.connect().start() for _ in range(2)]  # the whole pool
        try:
            started = time.monotonic()
            ready = await client.get("/readyz")
            waited = time.monotonic() - started
        finally:
            for conn in held:
                await conn.close()
    assert ready.status_code == 200, ready.text
    assert waited < 1.0, f"/readyz waited {waited:.2f} s for a pool connection"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
async def test_sqlite_work_off_the_loop_runs_nicer_than_the_loop(landscape: Landscape) -> None:
    loop_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    async with landscape.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        worker: threading.Thread = raw.driver_connection._thread  # aiosqlite's thread for this connection
        await conn.execute(text("SELECT 1"))
        assert worker.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == min(19, loop_priority + OFF_LOOP_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_priority
