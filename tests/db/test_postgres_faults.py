"""PostgreSQL misbehaving, for real: a stopped server, a slow statement, a role that could write."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.db.engine import EngineOptions, open_landscape
from landscape_graphql.db.session import DbSession
from landscape_graphql.errors import QueryTimeout
from tests.conftest import PG_DUMP, truth
from tests.live_server import serve

pytestmark = pytest.mark.postgres
RUN = truth(*PG_DUMP)["runs"][0]


async def test_the_api_cannot_write_even_when_its_role_could(pg_databases: dict[Any, str]) -> None:
    # The URL is the cluster's superuser: only the server-side read-only default stops writes.
    landscape = await open_landscape(pg_databases[PG_DUMP])
    try:
        for statement in ("DELETE FROM token_outcomes", "UPDATE runs SET status = 'failed'",
                          "CREATE TABLE sneaky (x int)", "INSERT INTO runs (run_id) VALUES ('x')"):
            async with landscape.engine.connect() as conn:
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    await conn.execute(text(statement))
                    await conn.commit()
        async with landscape.engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM token_outcomes"))).scalar_one()
        assert count > 0
    finally:
        await landscape.dispose()


async def test_a_slow_statement_is_cancelled_at_the_deadline(pg_databases: dict[Any, str]) -> None:
    landscape = await open_landscape(pg_databases[PG_DUMP])
    try:
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            await DbSession(landscape, timeout_s=0.3).all(text("SELECT pg_sleep(20)"))
        assert time.monotonic() - started < 5
        async with landscape.engine.connect() as conn:
            active = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%' "
                "AND state = 'active'"))).scalar_one()
        assert active == 0, "the statement must be cancelled on the server, not abandoned"
        rows = await DbSession(landscape, timeout_s=5).all(text("SELECT count(*) FROM runs"))
        assert rows[0][0] == 1
    finally:
        await landscape.dispose()


async def test_statement_timeout_is_a_backstop_for_the_servers_sessions(pg_databases: dict[Any, str]) -> None:
    # No client-side deadline at all (timeout_s=None): the server's own statement_timeout stops it.
    landscape = await open_landscape(pg_databases[PG_DUMP], EngineOptions(statement_timeout_s=0.5))
    try:
        async with landscape.engine.connect() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "500ms"
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            await DbSession(landscape, timeout_s=None).all(text("SELECT pg_sleep(20)"))
        assert time.monotonic() - started < 5
    finally:
        await landscape.dispose()


@pytest.fixture
def pg_server(pg_cluster: Any, pg_databases: dict[Any, str]) -> Iterator[tuple[str, Any]]:
    app = create_app(AppConfig(database=pg_databases[PG_DUMP]))
    with serve(app) as url:
        yield url, pg_cluster
    if not pg_cluster.is_running():
        pg_cluster.start_server()


def test_postgres_stops_and_comes_back_without_a_restart_of_ours(pg_server: tuple[str, Any]) -> None:
    url, cluster = pg_server
    query = {"query": "query ($r: String!) { run(runId: $r) { status tokens(first: 3) { nodes { tokenId } } } }",
             "variables": {"r": RUN["run_id"]}}
    assert "errors" not in httpx.post(f"{url}/graphql", json=query, timeout=30).json()
    cluster.stop_server()
    try:
        down = httpx.post(f"{url}/graphql", json=query, timeout=30).json()
        assert {e["extensions"]["code"] for e in down["errors"]} == {"DATABASE_UNAVAILABLE"}
        assert "Traceback" not in str(down)
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert httpx.get(f"{url}/livez").status_code == 200
    finally:
        cluster.start_server()
    back = httpx.post(f"{url}/graphql", json=query, timeout=30).json()
    assert "errors" not in back, back
    assert back["data"]["run"]["status"] == "COMPLETED_WITH_FAILURES"
    assert httpx.get(f"{url}/readyz").status_code == 200
