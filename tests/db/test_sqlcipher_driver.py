"""SQLCipher: real encrypted copies of the fixtures, opened read-only, through aiosqlite and
through a SQLAlchemy AsyncEngine built the way engine.py builds it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from landscape_graphql.db._sqlcipher import (
    WrongKeyError,
    connect_sqlcipher,
    encrypt_copy,
    sqlcipher_module,
)
from landscape_graphql.db.tables import tables_for
from tests.conftest import FIXTURES

# Quotes, a statement separator and a comment: a key that naive PRAGMA formatting would break
# or turn into SQL.
KEY = "it's a \"key\"; PRAGMA key = 'x'; --ünï"


def _plain_copy(tmp: Path, epoch: int, name: str) -> Path:
    # Fixtures are in WAL mode: never open them in place.
    dest = tmp / f"plain-e{epoch}-{name}.db"
    shutil.copy2(FIXTURES / f"epoch{epoch}" / f"{name}.db", dest)
    return dest


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """epoch -> (plain copy, encrypted copy) of each epoch's llm-calls fixture."""
    tmp = tmp_path_factory.mktemp("sqlcipher")
    out: dict[int, tuple[Path, Path]] = {}
    for epoch in (2, 29):
        plain = _plain_copy(tmp, epoch, "llm-calls")
        enc = tmp / f"enc-e{epoch}.db"
        encrypt_copy(plain, enc, KEY)
        out[epoch] = (plain, enc)
    return out


def _tiny_plain(tmp: Path) -> Path:
    # For the key tests the content does not matter; a tiny file keeps each export cheap (the
    # KDF of every keyed open, ~0.2 s, is what remains).
    path = tmp / "tiny.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 2;")
    conn.close()
    return path


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def test_wheel_is_sqlcipher_4() -> None:
    # ELSPETH writes with SQLCipher 4 defaults; a 3.x build could not read its files.
    conn = sqlcipher_module().connect(":memory:")
    try:
        version = conn.execute("PRAGMA cipher_version").fetchone()[0]
    finally:
        conn.close()
    assert str(version).startswith("4.")


@pytest.mark.parametrize("epoch", [2, 29])
def test_copy_is_really_encrypted(encrypted: dict[int, tuple[Path, Path]], epoch: int) -> None:
    _, enc = encrypted[epoch]
    assert not enc.read_bytes().startswith(b"SQLite format 3\x00")
    plain = sqlite3.connect(f"file:{enc}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        plain.close()


@pytest.mark.parametrize("epoch", [2, 29])
async def test_right_key_reads_every_table_and_the_epoch(
        encrypted: dict[int, tuple[Path, Path]], epoch: int) -> None:
    plain_path, enc = encrypted[epoch]
    plain = sqlite3.connect(f"file:{plain_path}?mode=ro", uri=True)
    try:
        expected = _table_counts(plain)
    finally:
        plain.close()
    conn = await connect_sqlcipher(str(enc), KEY)
    try:
        assert list(await conn.execute_fetchall("PRAGMA user_version")) == [(epoch,)]
        names = [r[0] for r in await conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        got: dict[str, int] = {}
        for n in names:
            async with conn.execute(f'SELECT count(*) FROM "{n}"') as cursor:
                row = await cursor.fetchone()
                assert row is not None
                got[n] = row[0]
    finally:
        await conn.close()
    assert got == expected
    assert got["tokens"] > 0


async def test_connection_refuses_writes(encrypted: dict[int, tuple[Path, Path]]) -> None:
    _, enc = encrypted[29]
    before = enc.read_bytes()
    conn = await connect_sqlcipher(str(enc), KEY)
    try:
        for sql in ("CREATE TABLE intruder (x)", "DELETE FROM tokens",
                    "UPDATE runs SET status = 'failed'"):
            with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
                await conn.execute(sql)
        # query_only is only a guard on top: the file itself is opened mode=ro.
        await conn.execute("PRAGMA query_only = OFF")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("DELETE FROM tokens")
    finally:
        await conn.close()
    assert enc.read_bytes() == before


async def test_readonly_false_can_write(tmp_path: Path) -> None:
    plain = _tiny_plain(tmp_path)
    enc = tmp_path / "rw.db"
    encrypt_copy(plain, enc, KEY)
    conn = await connect_sqlcipher(str(enc), KEY, readonly=False)
    try:
        await conn.execute("CREATE TABLE scratch (x)")
        await conn.commit()
    finally:
        await conn.close()
    conn = await connect_sqlcipher(str(enc), KEY)
    try:
        assert list(await conn.execute_fetchall("SELECT count(*) FROM scratch")) == [(0,)]
    finally:
        await conn.close()


@pytest.mark.parametrize("wrong", ["", "x", KEY + " ", KEY.replace("'", "''"), KEY.upper()])
async def test_wrong_key_is_a_clear_error_without_the_key(
        encrypted: dict[int, tuple[Path, Path]], wrong: str, capfd: pytest.CaptureFixture[str]) -> None:
    _, enc = encrypted[29]
    if wrong == "":
        with pytest.raises(ValueError, match="non-empty"):
            await connect_sqlcipher(str(enc), wrong)
        return
    with pytest.raises(WrongKeyError) as caught:
        await connect_sqlcipher(str(enc), wrong)
    exc = caught.value
    assert "key is wrong" in str(exc) and enc.name in str(exc)
    for text_ in (str(exc), repr(exc)):
        assert wrong not in text_ and KEY not in text_
    # No chained driver error that a traceback would print, and nothing on stderr (SQLCipher
    # logs a failed HMAC check there unless told not to).
    assert exc.__cause__ is None and exc.__context__ is None
    out, err = capfd.readouterr()
    assert "hmac" not in err.lower() and wrong not in err and wrong not in out


async def test_plain_sqlite_file_is_not_taken_for_a_wrong_key_silently(
        encrypted: dict[int, tuple[Path, Path]]) -> None:
    plain, _ = encrypted[29]
    with pytest.raises(WrongKeyError):
        await connect_sqlcipher(str(plain), KEY)


async def test_missing_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(sqlite3.OperationalError, match="No database file"):
        await connect_sqlcipher(str(missing), KEY)
    assert not missing.exists()


@pytest.mark.parametrize("key", ["a'b", "\"", "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'",
                                 "🔑 ключ"])
async def test_awkward_keys_round_trip_exactly(tmp_path: Path, key: str) -> None:
    plain = _tiny_plain(tmp_path)
    enc = tmp_path / "k.db"
    encrypt_copy(plain, enc, key)
    conn = await connect_sqlcipher(str(enc), key)
    try:
        assert list(await conn.execute_fetchall("PRAGMA user_version")) == [(2,)]
    finally:
        await conn.close()
    # A near miss must not open it: the quoting passes the key through unchanged.
    with pytest.raises(WrongKeyError):
        await connect_sqlcipher(str(enc), key + "'")


def test_nul_in_key_is_refused(tmp_path: Path) -> None:
    plain = _tiny_plain(tmp_path)
    with pytest.raises(ValueError, match="NUL"):
        encrypt_copy(plain, tmp_path / "n.db", "a\x00b")
    assert not (tmp_path / "n.db").exists()


# -- the combination engine.py uses: create_async_engine("sqlite+aiosqlite://", async_creator=…)


@pytest.fixture
async def sa_engine(encrypted: dict[int, tuple[Path, Path]]) -> AsyncIterator[AsyncEngine]:
    _, enc = encrypted[29]

    async def creator() -> object:
        return await connect_sqlcipher(str(enc), KEY)

    engine = create_async_engine("sqlite+aiosqlite://", async_creator=creator,
                                 poolclass=AsyncAdaptedQueuePool, pool_size=2, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_sqlalchemy_async_engine_reads_through_sqlcipher(
        sa_engine: AsyncEngine, encrypted: dict[int, tuple[Path, Path]]) -> None:
    plain_path, _ = encrypted[29]
    plain = sqlite3.connect(f"file:{plain_path}?mode=ro", uri=True)
    try:
        tokens = plain.execute("SELECT count(*) FROM tokens").fetchone()[0]
        first_run = plain.execute("SELECT run_id, started_at FROM runs ORDER BY run_id").fetchone()
    finally:
        plain.close()
    t = tables_for(29)
    async with sa_engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.tokens))).scalar_one() == tokens
        run_id, started_at = (await conn.execute(
            select(t.runs.c.run_id, t.runs.c.started_at).order_by(t.runs.c.run_id))).one()
    assert run_id == first_run[0]
    # The DateTime model column parses SQLite's text exactly as for a plain file.
    assert started_at.isoformat(sep=" ") == first_run[1]


async def test_sqlalchemy_pool_serves_concurrent_connections(sa_engine: AsyncEngine) -> None:
    async def count(table: str) -> int:
        async with sa_engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())

    tokens, states = await asyncio.gather(count("tokens"), count("node_states"))
    assert tokens > 0 and states > 0


async def test_sqlalchemy_sees_sqlite3_errors_from_sqlcipher(sa_engine: AsyncEngine) -> None:
    # sqlcipher3's own exception classes are translated to sqlite3's, so SQLAlchemy wraps them
    # like any aiosqlite error (and engine.py's error mapping recognises them).
    async with sa_engine.connect() as conn:
        with pytest.raises(SAOperationalError) as caught:
            await conn.execute(text("SELECT * FROM no_such_table"))
        assert isinstance(caught.value.orig, sqlite3.OperationalError)
        with pytest.raises(SAOperationalError, match=r"readonly|query_only"):
            await conn.execute(text("DELETE FROM tokens"))
        # The connection is still usable after the errors.
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_sqlalchemy_engine_with_wrong_key_fails_on_connect(
        encrypted: dict[int, tuple[Path, Path]]) -> None:
    _, enc = encrypted[29]

    async def creator() -> object:
        return await connect_sqlcipher(str(enc), "not the key")

    engine = create_async_engine("sqlite+aiosqlite://", async_creator=creator)
    try:
        with pytest.raises(WrongKeyError):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
