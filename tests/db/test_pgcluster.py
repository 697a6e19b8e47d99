"""PostgreSQL: the throwaway cluster, ELSPETH's own PostgreSQL dump, and pgload's copies of every
SQLite fixture, checked value by value against the SQLite source.

One cluster serves the whole module; the test that stops and restarts the server runs last.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Boolean, DateTime, Table
from sqlalchemy.exc import DBAPIError

from landscape_graphql.db.pgload import LoadError, LoadReport, load_sqlite_into_postgres
from landscape_graphql.db.pgload import main as pgload_main
from landscape_graphql.db.tables import tables_for
from tests._pgcluster import PgCluster
from tests.conftest import FIXTURES, SQLITE_FIXTURES, truth

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
PG_DUMP = FIXTURES / "epoch29" / "pg-fork-coalesce.sql"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    started = time.perf_counter()
    c = PgCluster.start()
    print(f"\ncluster started in {time.perf_counter() - started:.2f}s on port {c.port}")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def restored(cluster: PgCluster) -> str:
    """The name of a database holding ELSPETH's PostgreSQL dump."""
    cluster.create_database("elspeth_pg")
    started = time.perf_counter()
    cluster.restore_dump(PG_DUMP, "elspeth_pg")
    print(f"\ndump restored in {time.perf_counter() - started:.2f}s")
    return "elspeth_pg"


@pytest.fixture(scope="module")
def sqlite_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], Path]:
    # Fixtures are in WAL mode: copy them before opening, even read-only.
    root = tmp_path_factory.mktemp("pg-sources")
    out = {}
    for epoch, name in sorted(SQLITE_FIXTURES):
        dest = root / f"e{epoch}-{name}.db"
        shutil.copy2(FIXTURES / f"epoch{epoch}" / f"{name}.db", dest)
        out[(epoch, name)] = dest
    return out


@pytest.fixture(scope="module")
def loaded(cluster: PgCluster, sqlite_copies: dict[tuple[int, str], Path]
           ) -> dict[tuple[int, str], tuple[str, LoadReport]]:
    """Every SQLite fixture loaded by pgload into its own database: key -> (dbname, report)."""
    out = {}

    async def load(epoch: int, name: str, path: Path, db: str) -> None:
        report = await load_sqlite_into_postgres(path, cluster.url(db))
        print(f"\npgload {epoch}/{name}: {report.rows} rows in {report.seconds:.2f}s")
        out[(epoch, name)] = (db, report)

    async def load_all() -> None:
        # One after the other: on two cores concurrent loads are no faster, and the printed
        # per-fixture times stay meaningful.
        for (epoch, name), path in sqlite_copies.items():
            db = f"e{epoch}_{name.replace('-', '_')}"
            cluster.create_database(db)
            await load(epoch, name, path, db)

    # A private loop: module fixtures may not share the tests' loop scope.
    asyncio.run(load_all())
    return out


async def _connect(cluster: PgCluster, db: str) -> asyncpg.Connection:
    return await asyncpg.connect(cluster.libpq_url(db))


# -- the cluster itself -----------------------------------------------------------------------


async def test_cluster_listens_only_on_loopback_and_is_tuned_for_tests(cluster: PgCluster) -> None:
    conn = await _connect(cluster, "postgres")
    try:
        settings = {name: await conn.fetchval(f"SHOW {name}") for name in
                    ("listen_addresses", "fsync", "unix_socket_directories", "port", "TimeZone")}
    finally:
        await conn.close()
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off",
                        "unix_socket_directories": str(cluster.root), "port": str(cluster.port),
                        "TimeZone": "UTC"}
    assert (cluster.root / f".s.PGSQL.{cluster.port}").is_socket()
    assert cluster.url("x").startswith("postgresql+asyncpg://postgres:") and \
        cluster.url("x").endswith(f"@127.0.0.1:{cluster.port}/x")


def test_server_runs_as_postgres_when_root(cluster: PgCluster) -> None:
    owner = cluster.data_dir.stat().st_uid
    pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    proc_uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert owner == proc_uid == pwd.getpwnam("postgres").pw_uid
    else:
        assert owner == proc_uid == os.geteuid()


async def test_tcp_needs_the_password(cluster: PgCluster) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(cluster.libpq_url("postgres", password="wrong"))


def test_cluster_is_reaped_when_the_test_process_dies(tmp_path: Path) -> None:
    """Neither a SIGKILLed test process nor one that forgot stop() leaves a server behind."""
    child = textwrap.dedent("""
        import os, signal, sys
        sys.path.insert(0, sys.argv[1])
        from tests._pgcluster import PgCluster
        c = PgCluster.start()
        print(c.root, c.port, flush=True)
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        # "exit": leave without stop(); the atexit hook must clean up.
    """)
    # Both children at once: each spends most of its time in initdb.
    children = {how: subprocess.Popen([sys.executable, "-c", child, str(REPO), how],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for how in ("kill", "exit")}
    for how, proc in children.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert stdout.strip(), f"{how}: child failed: {stderr}"
        root_s, port_s = stdout.split()
        root, port = Path(root_s), int(port_s)
        deadline = time.monotonic() + 30
        while (root.exists() or _accepting(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not root.exists(), f"{how}: cluster directory left behind"
        assert not _accepting(port), f"{how}: server still running"


def test_missing_postgresql_names_the_install_script(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests._pgcluster as pgc

    monkeypatch.delenv("LANDSCAPE_PG_BINDIR", raising=False)
    monkeypatch.setattr(pgc.shutil, "which", lambda _name: None)
    monkeypatch.setattr(pgc.glob, "glob", lambda _pattern: [])
    with pytest.raises(pgc.PostgresNotInstalled, match=r"scripts/install-system-deps\.sh"):
        pgc.PgCluster.start()


def _accepting(port: int) -> bool:
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- ELSPETH's own PostgreSQL Landscape -------------------------------------------------------


async def _check_truth_cases(conn: asyncpg.Connection, truth_doc: dict[str, Any]) -> int:
    """Assert the database holds each truth case's token as ELSPETH's explain() saw it."""
    checked = 0
    for run in truth_doc["runs"]:
        for name, case in run["cases"].items():
            token_id = case["token_id"]
            token = await conn.fetchrow(
                "SELECT row_id, branch_name, fork_group_id, join_group_id, expand_group_id "
                "FROM tokens WHERE token_id = $1 AND run_id = $2", token_id, run["run_id"])
            assert token is not None, f"{name}: token {token_id} missing"
            assert dict(token) == {k: case[k] for k in token.keys()}  # noqa: SIM118 (a Record iterates values), name
            states = await conn.fetch(
                "SELECT step_index, node_id, attempt, status, state_id FROM node_states "
                "WHERE token_id = $1 ORDER BY step_index, attempt", token_id)
            assert [dict(s) for s in states] == case["node_states"], name
            parents = await conn.fetch(
                "SELECT parent_token_id FROM token_parents WHERE token_id = $1 ORDER BY ordinal", token_id)
            assert [p[0] for p in parents] == [p["token_id"] for p in case["parents"]], name
            children = await conn.fetch(
                "SELECT token_id FROM token_parents WHERE parent_token_id = $1", token_id)
            assert sorted(c[0] for c in children) == sorted(case["children"]), name
            checked += 1
    return checked


async def test_restored_dump_is_epoch_29_and_matches_the_truth(cluster: PgCluster, restored: str) -> None:
    conn = await _connect(cluster, restored)
    try:
        identity = await conn.fetch("SELECT singleton_id, application_id, store_kind, schema_epoch "
                                    "FROM elspeth_schema_identity")
        assert [tuple(r) for r in identity] == [(1, "elspeth", "landscape", 29)]
        assert await _check_truth_cases(conn, truth(29, "pg-fork-coalesce")) == 5
        # The PostgreSQL form: real timestamptz and booleans.
        types = dict(await conn.fetch(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND (table_name, column_name) IN "
            "(('runs', 'started_at'), ('runs', 'seeded_from_cache'))"))
        assert types == {"runs.started_at": "timestamp with time zone", "runs.seeded_from_cache": "boolean"}
    finally:
        await conn.close()


# -- pgload: every SQLite fixture, compared with its source ------------------------------------


def _pg_expr(table: Table, column: str) -> str:
    col = table.c[column]
    if isinstance(col.type, DateTime):
        # Back to SQLite's own text form, in UTC: an exact, independent check of the conversion.
        return f"to_char(\"{column}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    if isinstance(col.type, Boolean):
        return f'"{column}"::int'
    return f'"{column}"'


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES))
async def test_pgload_copies_every_row_and_value_exactly(
        cluster: PgCluster, loaded: dict[tuple[int, str], tuple[str, LoadReport]],
        sqlite_copies: dict[tuple[int, str], Path], epoch: int, name: str) -> None:
    db, report = loaded[(epoch, name)]
    models = tables_for(epoch)
    assert report.epoch == epoch
    assert {t.name for t in report.tables} == set(models.metadata.tables)
    source = sqlite3.connect(f"file:{sqlite_copies[(epoch, name)]}?mode=ro", uri=True)
    conn = await _connect(cluster, db)
    try:
        for table in models.metadata.sorted_tables:
            cols = [c.name for c in table.columns]
            order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            expected = source.execute(
                f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table.name}" ORDER BY {order}'
            ).fetchall()
            got = [tuple(r) for r in await conn.fetch(
                f'SELECT {", ".join(_pg_expr(table, c) for c in cols)} FROM "{table.name}" ORDER BY {order}')]
            assert len(got) == len(expected), table.name
            assert got == expected, table.name
            assert dict((t.name, t.rows) for t in report.tables)[table.name] == len(expected)
        # A sample through the driver's own types: aware UTC datetimes, real booleans.
        run_id, started_text = source.execute(
            "SELECT run_id, started_at FROM runs ORDER BY run_id LIMIT 1").fetchone()
        started = await conn.fetchval("SELECT started_at FROM runs WHERE run_id = $1", run_id)
        assert started.utcoffset() is not None and started.utcoffset().total_seconds() == 0
        assert started.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") == started_text
        if epoch == 29:
            flags = await conn.fetch("SELECT seeded_from_cache FROM runs")
            assert flags and all(f[0] is False for f in flags)
            assert (await conn.fetchval("SELECT count(*) FROM artifacts WHERE publication_performed")
                    == source.execute("SELECT count(*) FROM artifacts WHERE publication_performed = 1").fetchone()[0])
    finally:
        source.close()
        await conn.close()


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES))
async def test_pgload_keeps_lineage_and_the_epoch_marker(
        cluster: PgCluster, loaded: dict[tuple[int, str], tuple[str, LoadReport]], epoch: int, name: str) -> None:
    db, _ = loaded[(epoch, name)]
    conn = await _connect(cluster, db)
    try:
        assert await _check_truth_cases(conn, truth(epoch, name)) > 0
        tables = {r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert tables == set(tables_for(epoch).metadata.tables)
        if epoch == 29:
            assert [tuple(r) for r in await conn.fetch("SELECT * FROM elspeth_schema_identity")] == \
                [(1, "elspeth", "landscape", 29)]
        else:
            # ELSPETH 0.4.1 wrote no marker on PostgreSQL; the loader must not invent one.
            assert "elspeth_schema_identity" not in tables
        types = dict(await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'runs'"))
        assert types["started_at"] == "timestamp with time zone"
        if epoch == 29:
            assert types["seeded_from_cache"] == "boolean"
    finally:
        await conn.close()


async def test_epoch_detection_reads_loaded_databases(
        cluster: PgCluster, loaded: dict[tuple[int, str], tuple[str, LoadReport]]) -> None:
    from landscape_graphql.db.engine import open_landscape

    for (epoch, _name), (db, _) in sorted(loaded.items()):
        landscape = await open_landscape(cluster.url(db))
        try:
            assert (landscape.backend, landscape.epoch) == ("postgresql", epoch), db
        finally:
            await landscape.dispose()


def test_pgload_reports_text_longer_than_its_declared_length(
        loaded: dict[tuple[int, str], tuple[str, LoadReport]]) -> None:
    # ELSPETH 0.4.1 declares runs.schema_contract_hash VARCHAR(16) but writes 32 hex digits
    # (SQLite never enforces n); the copy keeps the value whole and says so.
    _, report = loaded[(2, "fork-coalesce")]
    widened = {(w.table, w.column): (w.declared_length, w.longest) for w in report.widened_columns}
    assert widened == {("runs", "schema_contract_hash"): (16, 32)}


async def test_pgload_refuses_overlong_text_when_asked_to(
        cluster: PgCluster, sqlite_copies: dict[tuple[int, str], Path]) -> None:
    cluster.create_database("strict_lengths")
    with pytest.raises(LoadError, match=r"runs\.schema_contract_hash \(32 > 16\)"):
        await load_sqlite_into_postgres(sqlite_copies[(2, "llm-calls")], cluster.url("strict_lengths"),
                                        widen_overlong=False)
    await _assert_no_tables(cluster, "strict_lengths")


async def _assert_no_tables(cluster: PgCluster, db: str) -> None:
    conn = await _connect(cluster, db)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == 0
    finally:
        await conn.close()


async def test_pgload_into_a_non_empty_database_fails_and_changes_nothing(
        cluster: PgCluster, loaded: dict[tuple[int, str], tuple[str, LoadReport]],
        sqlite_copies: dict[tuple[int, str], Path]) -> None:
    db, report = loaded[(29, "llm-calls")]
    with pytest.raises(DBAPIError, match="already exists") as caught:
        await load_sqlite_into_postgres(sqlite_copies[(29, "llm-calls")], cluster.url(db))
    assert caught.value.orig is not None
    assert isinstance(caught.value.orig.__cause__, asyncpg.DuplicateTableError)
    conn = await _connect(cluster, db)
    try:
        for t in report.tables:
            assert await conn.fetchval(f'SELECT count(*) FROM "{t.name}"') == t.rows
    finally:
        await conn.close()


async def test_pgload_refuses_a_bad_value_and_leaves_nothing_behind(
        cluster: PgCluster, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    shutil.copy2(FIXTURES / "epoch29" / "llm-calls.db", bad)
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE artifacts SET publication_performed = 2")
        conn.execute("UPDATE runs SET started_at = 'yesterday'")
    conn.close()
    cluster.create_database("bad_values")
    with pytest.raises(LoadError, match=r"runs\.started_at \(rowid \d+\): not an ISO timestamp"):
        await load_sqlite_into_postgres(bad, cluster.url("bad_values"))
    await _assert_no_tables(cluster, "bad_values")


async def test_pgload_refuses_an_unknown_epoch(cluster: PgCluster, tmp_path: Path) -> None:
    odd = tmp_path / "odd.db"
    shutil.copy2(FIXTURES / "epoch2" / "llm-calls.db", odd)
    with sqlite3.connect(odd) as conn:
        conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(LoadError, match="user_version 7"):
        await load_sqlite_into_postgres(odd, cluster.url("postgres"))


def test_pgload_command_line(cluster: PgCluster, sqlite_copies: dict[tuple[int, str], Path],
                             capsys: pytest.CaptureFixture[str]) -> None:
    cluster.create_database("from_cli")
    url = cluster.libpq_url("from_cli")
    proc = subprocess.run([sys.executable, "-m", "landscape_graphql.db.pgload",
                           str(sqlite_copies[(29, "llm-calls")]), url],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Loaded epoch 29 Landscape" in proc.stdout and "tokens: " in proc.stdout
    assert cluster.password not in proc.stdout + proc.stderr
    # The failure path in-process (a second interpreter start costs more than the load).
    assert pgload_main([str(sqlite_copies[(29, "llm-calls")]), url]) == 1
    out, err = capsys.readouterr()
    assert "nothing was committed" in err
    assert cluster.password not in out + err


# -- the read-only role the README shows ---------------------------------------------------------


@pytest.fixture(scope="module")
def reader_url(cluster: PgCluster, restored: str) -> str:
    return cluster.create_readonly_role(restored, "landscape_reader")


@pytest.mark.parametrize("statement", [
    "INSERT INTO runs (run_id) VALUES ('x')",
    "UPDATE tokens SET branch_name = 'x'",
    "DELETE FROM token_outcomes",
    "TRUNCATE calls",
    "CREATE TABLE intruder (x int)",
    "CREATE TEMP TABLE intruder (x int)",
    "CREATE SCHEMA intruder",
    "ALTER TABLE runs ADD COLUMN x int",
    "DROP TABLE batch_outputs",
])
async def test_readonly_role_can_read_but_not_write(reader_url: str, statement: str) -> None:
    conn = await asyncpg.connect(reader_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM tokens") > 0
        # The role's default is a read-only transaction…
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute(statement)
        # …but any role may switch that off for itself: the privileges are what must hold.
        await conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_readonly_role_is_enough_for_the_api(reader_url: str) -> None:
    from landscape_graphql.db.engine import open_landscape

    landscape = await open_landscape(reader_url)
    try:
        assert landscape.epoch == 29
    finally:
        await landscape.dispose()


# -- PostgreSQL going away and coming back (last: it disturbs the shared cluster) ---------------


async def test_stop_and_start_the_server(cluster: PgCluster, restored: str) -> None:
    before = await _connect(cluster, restored)
    tokens = await before.fetchval("SELECT count(*) FROM tokens")
    cluster.stop_server()
    assert not cluster.is_running()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await before.fetchval("SELECT 1")
    with pytest.raises(OSError):
        await asyncpg.connect(cluster.libpq_url(restored), timeout=5)
    cluster.start_server()
    assert cluster.is_running()
    after = await _connect(cluster, restored)
    try:
        assert await after.fetchval("SELECT count(*) FROM tokens") == tokens
    finally:
        await after.close()
        before.terminate()
    cluster.restart()
    again = await _connect(cluster, restored)
    try:
        assert await again.fetchval("SELECT count(*) FROM tokens") == tokens
    finally:
        await again.close()
