"""Epoch detection, and the refusals a person gets for a database we cannot read."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from landscape_graphql.db.engine import open_landscape
from landscape_graphql.errors import UnsupportedDatabase
from tests.conftest import FIXTURES, SQLITE_FIXTURES


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES))
async def test_every_fixture_is_detected_with_its_epoch(fixture_copies: Path, epoch: int, name: str) -> None:
    landscape = await open_landscape(str(fixture_copies / f"epoch{epoch}" / f"{name}.db"))
    try:
        assert landscape.epoch == epoch
        assert landscape.backend == "sqlite"
        assert landscape.elspeth_version == {2: "0.4.1", 29: "0.7.1"}[epoch]
    finally:
        await landscape.dispose()


def _copy(tmp_path: Path, epoch: int = 29, name: str = "llm-calls") -> Path:
    db = tmp_path / f"{name}.db"
    shutil.copy2(FIXTURES / f"epoch{epoch}" / f"{name}.db", db)
    return db


async def _refusal(target: str) -> str:
    with pytest.raises(UnsupportedDatabase) as caught:
        landscape = await open_landscape(target)
        await landscape.dispose()
    return caught.value.message


async def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert "No database file" in await _refusal(str(tmp_path / "absent.db"))


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"this is not a database\n" * 200)
    message = await _refusal(str(junk))
    assert "not a SQLite database" in message
    assert junk.read_bytes() == b"this is not a database\n" * 200


async def test_sqlite_that_is_not_a_landscape_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    assert "not an ELSPETH Landscape" in await _refusal(str(db))


async def test_unknown_epoch_names_found_and_supported(tmp_path: Path) -> None:
    db = _copy(tmp_path, 2, "llm-calls")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 7")
    message = await _refusal(str(db))
    assert "epoch 7" in message and "2, 29" in message


async def test_identity_table_epoch_wins_and_is_checked(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE elspeth_schema_identity SET schema_epoch = 31")
        conn.execute("PRAGMA user_version = 0")
    message = await _refusal(str(db))
    assert "epoch 31" in message


async def test_conflicting_markers_are_refused(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 2")
    assert "Conflicting epoch markers" in await _refusal(str(db))


async def test_missing_columns_are_refused_by_name(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE tokens DROP COLUMN token_data_ref")
    assert "tokens.token_data_ref" in await _refusal(str(db))


async def test_connections_are_read_only(fixture_copies: Path) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    landscape = await open_landscape(str(fixture_copies / "epoch2" / "llm-calls.db"))
    try:
        for statement in ("DELETE FROM runs", "UPDATE tokens SET branch_name = 'x'",
                          "CREATE TABLE t (x)", "PRAGMA user_version = 5"):
            async with landscape.engine.connect() as conn:
                with pytest.raises(OperationalError) as caught:
                    await conn.execute(text(statement))
                    await conn.commit()
                assert "readonly" in str(caught.value) or "read-only" in str(caught.value) or \
                    "attempt to write" in str(caught.value)
    finally:
        await landscape.dispose()
