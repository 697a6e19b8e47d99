"""Persisted queries, GET for persisted queries only, ETags, 304s and the response cache, per backend.

Each test serves its own writable copy of a fixture (a temp SQLite file, or a fresh PostgreSQL
database loaded from one): the data-change test commits to it through another connection.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.auth import build_authenticator, hash_token
from landscape_graphql.persisted import PersistedQueries
from tests.conftest import FIXTURES, truth

RUNS = truth(2, "examples-multirun")["runs"]
MINE, OTHER = RUNS[5]["run_id"], RUNS[6]["run_id"]
SCOPED, FULL = "scoped-token-xyz", "full-token-abc"
RUN_STATUS = "query ($r: String!) { run(runId: $r) { runId status } }"
RUN_COUNT = "{ runs { totalCount } }"
_names = itertools.count()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Target:
    """A writable copy of examples-multirun on the backend under test."""

    def __init__(self, database: str, commit_status: Any) -> None:
        self.database = database
        self.commit_status = commit_status


@pytest.fixture
async def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Target:
    source = FIXTURES / "epoch2" / "examples-multirun.db"
    copy = tmp_path / "landscape.db"
    shutil.copy2(source, copy)
    if backend == "sqlite":
        async def commit_sqlite(status: str) -> None:
            with sqlite3.connect(copy) as conn:  # another connection: the writer
                conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, MINE))
        return Target(str(copy), commit_sqlite)
    from landscape_graphql.db.pgload import load_sqlite_into_postgres
    cluster = request.getfixturevalue("pg_cluster")
    name = f"caching_{next(_names)}_{hashlib.sha1(request.node.name.encode()).hexdigest()[:8]}"
    url = cluster.create_database(name)
    await load_sqlite_into_postgres(copy, url)

    async def commit_postgres(status: str) -> None:
        import asyncpg
        conn = await asyncpg.connect(cluster.libpq_url(name))
        try:
            await conn.execute("UPDATE runs SET status = $1 WHERE run_id = $2", status, MINE)
        finally:
            await conn.close()
    return Target(url, commit_postgres)


@asynccontextmanager
async def client(target: Target, tmp_path: Path, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "auditor", "sha256": hash_token(SCOPED), "runs": [MINE]},
        {"name": "ops", "sha256": hash_token(FULL)}]}))
    app = create_app(AppConfig(database=target.database, graphiql=False,
                               payload_roots=(str(FIXTURES / "epoch2" / "examples-multirun.payloads"),),
                               authenticator=build_authenticator(tokens_file=tokens), **options))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t",
            headers={"Authorization": f"Bearer {FULL}"}) as c:
        yield c


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_apq_miss_register_hit_and_wrong_hash(target: Target, tmp_path: Path) -> None:
    async with client(target, tmp_path) as c:
        miss = (await c.post("/graphql", json={"extensions": persisted(sha(RUN_COUNT))})).json()
        assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert "data" not in miss or miss.get("data") is None

        wrong = await c.post("/graphql", json={"query": RUN_COUNT, "extensions": persisted(sha("{ x }"))})
        assert wrong.status_code == 400
        assert "does not match" in wrong.json()["errors"][0]["message"]
        again = (await c.post("/graphql", json={"extensions": persisted(sha("{ x }"))})).json()
        assert again["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"  # nothing registered

        registered = (await c.post("/graphql", json={"query": RUN_COUNT,
                                                      "extensions": persisted(sha(RUN_COUNT))})).json()
        assert registered["data"]["runs"]["totalCount"] == len(RUNS)
        hit = (await c.post("/graphql", json={"extensions": persisted(sha(RUN_COUNT))})).json()
        assert hit["data"] == registered["data"]

        bad = await c.post("/graphql", json={"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "x"}}})
        assert bad.status_code == 400


async def test_get_runs_persisted_queries_only(target: Target, tmp_path: Path) -> None:
    async with client(target, tmp_path) as c:
        refused = await c.get("/graphql", params={"query": RUN_COUNT})
        assert refused.status_code == 405
        assert "persisted" in refused.json()["errors"][0]["message"]
        assert "data" not in refused.json()
        # Text with a hash is still text: GET never registers or runs it.
        refused = await c.get("/graphql", params={"query": RUN_COUNT,
                                                  "extensions": json.dumps(persisted(sha(RUN_COUNT)))})
        assert refused.status_code == 405
        miss = (await c.get("/graphql", params={"extensions": json.dumps(persisted(sha(RUN_STATUS)))})).json()
        assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

        await c.post("/graphql", json={"query": RUN_STATUS, "variables": {"r": MINE},
                                       "extensions": persisted(sha(RUN_STATUS))})
        answer = await c.get("/graphql", params={"extensions": json.dumps(persisted(sha(RUN_STATUS))),
                                                  "variables": json.dumps({"r": MINE})})
        assert answer.status_code == 200
        assert answer.json()["data"]["run"]["runId"] == MINE
        unauthenticated = await c.get("/graphql", headers={"Authorization": ""},
                                      params={"extensions": json.dumps(persisted(sha(RUN_STATUS))),
                                              "variables": json.dumps({"r": MINE})})
        assert unauthenticated.status_code == 401


async def test_trusted_documents_mode_refuses_every_other_document(target: Target, tmp_path: Path) -> None:
    only = PersistedQueries({sha(RUN_STATUS): RUN_STATUS}, only_persisted=True)
    async with client(target, tmp_path, persisted=only) as c:
        ok = (await c.post("/graphql", json={"extensions": persisted(sha(RUN_STATUS)),
                                              "variables": {"r": MINE}})).json()
        assert ok["data"]["run"]["runId"] == MINE
        # The trusted text itself may be sent; any other text, or registering one, is refused.
        assert (await c.post("/graphql", json={"query": RUN_STATUS, "variables": {"r": MINE}})).status_code == 200
        for body in ({"query": RUN_COUNT}, {"query": RUN_COUNT, "extensions": persisted(sha(RUN_COUNT))}):
            refused = await c.post("/graphql", json=body)
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
        miss = (await c.post("/graphql", json={"extensions": persisted(sha(RUN_COUNT))})).json()
        assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_etag_304_cache_and_a_committed_change(target: Target, tmp_path: Path) -> None:
    body = {"query": RUN_STATUS, "variables": {"r": MINE}}
    async with client(target, tmp_path) as c:
        first = await c.post("/graphql", json=body)
        tag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        assert first.json()["extensions"]["landscape"]["sqlStatements"] > 0
        before = first.json()["data"]["run"]["status"]

        cached = await c.post("/graphql", json=body)
        assert cached.headers["etag"] == tag
        assert cached.json()["data"] == first.json()["data"]
        assert cached.json()["extensions"]["landscape"]["sqlStatements"] == 0
        assert cached.json()["extensions"]["landscape"]["cached"] is True

        not_modified = await c.post("/graphql", json=body, headers={"If-None-Match": tag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        other_variables = await c.post("/graphql", json={**body, "variables": {"r": OTHER}},
                                       headers={"If-None-Match": tag})
        assert other_variables.status_code == 200 and other_variables.headers["etag"] != tag

        changed_to = "failed" if before != "failed" else "completed"
        await target.commit_status(changed_to)
        after = await c.post("/graphql", json=body, headers={"If-None-Match": tag})
        assert after.status_code == 200
        assert after.headers["etag"] != tag
        assert after.json()["data"]["run"]["status"] == changed_to.upper()
        assert after.json()["extensions"]["landscape"]["sqlStatements"] > 0


async def test_scoped_principals_never_share_tags_or_cache_entries(target: Target, tmp_path: Path) -> None:
    body = {"query": RUN_COUNT}
    async with client(target, tmp_path) as c:
        full = await c.post("/graphql", json=body)
        assert full.json()["data"]["runs"]["totalCount"] == len(RUNS)
        scoped_headers = {"Authorization": f"Bearer {SCOPED}"}
        scoped = await c.post("/graphql", json=body, headers=scoped_headers)
        assert scoped.json()["data"]["runs"]["totalCount"] == 1
        assert "cached" not in scoped.json()["extensions"]["landscape"]
        assert scoped.headers["etag"] != full.headers["etag"]
        with_full_tag = await c.post("/graphql", json=body,
                                     headers={**scoped_headers, "If-None-Match": full.headers["etag"]})
        assert with_full_tag.status_code == 200
        assert with_full_tag.json()["data"]["runs"]["totalCount"] == 1
        again = await c.post("/graphql", json=body)
        assert again.json()["data"]["runs"]["totalCount"] == len(RUNS)


async def test_cache_off_still_tags(target: Target, tmp_path: Path) -> None:
    body = {"query": RUN_COUNT}
    async with client(target, tmp_path, response_cache_bytes=0) as c:
        first = await c.post("/graphql", json=body)
        second = await c.post("/graphql", json=body)
        assert second.headers["etag"] == first.headers["etag"]
        assert second.json()["extensions"]["landscape"]["sqlStatements"] > 0
        assert (await c.post("/graphql", json=body, headers={"If-None-Match": first.headers["etag"]})
                ).status_code == 304


def test_sqlite_version_follows_commits_journal_modes_and_replacement(tmp_path: Path) -> None:
    from landscape_graphql.http_cache import SqliteVersion
    db = tmp_path / "v.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    reader = SqliteVersion(str(db))
    seen = [reader.read()]
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("INSERT INTO t VALUES (1)")
    seen.append(reader.read())
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("INSERT INTO t VALUES (2)")
    seen.append(reader.read())
    writer.execute("INSERT INTO t VALUES (3)")
    seen.append(reader.read())
    assert reader.read() == seen[-1]  # no commit, no change
    writer.close()
    replacement = tmp_path / "w.db"
    shutil.copy2(db, replacement)
    replacement.replace(db)
    assert reader.read() is None  # WAL without its -shm (nobody has it open): no version, no caching
    held = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # as the server's own connections do
    held.execute("SELECT count(*) FROM t").fetchone()
    seen.append(reader.read())
    held.close()
    assert None not in seen and len(set(seen)) == len(seen), seen


async def test_an_allowed_origin_may_revalidate_persisted_gets(tmp_path: Path) -> None:
    copy = tmp_path / "landscape.db"
    shutil.copy2(FIXTURES / "epoch2" / "examples-multirun.db", copy)
    app = create_app(AppConfig(database=str(copy), graphiql=False, cors_origins=("https://viewer.example",)))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        preflight = await c.options("/graphql", headers={
            "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, if-none-match"})
        assert preflight.status_code == 200
        assert "GET" in preflight.headers["access-control-allow-methods"]
        other = await c.options("/graphql", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert other.status_code == 400
        answer = await c.post("/graphql", json={"query": RUN_COUNT}, headers={"Origin": "https://viewer.example"})
        assert answer.headers["access-control-expose-headers"].lower() == "etag"


async def test_answers_that_read_payloads_are_never_tagged_or_cached(target: Target, tmp_path: Path) -> None:
    """A purge deletes payload files without a database commit: such answers are always recomputed."""
    body = {"query": "query ($r: String!) { run(runId: $r) { rows(first: 2) { nodes { sourceData { state json } } } } }",
            "variables": {"r": MINE}}
    async with client(target, tmp_path) as c:
        for _ in range(2):
            answer = await c.post("/graphql", json=body)
            assert "errors" not in answer.json(), answer.json()
            assert "etag" not in answer.headers
            assert "cached" not in answer.json()["extensions"]["landscape"]
