"""Which Landscape schema epoch a database is, decided before any lineage query runs.

ELSPETH has no migrations: each release writes one epoch, so an API that reads several must
dispatch on the epoch itself. The markers are `PRAGMA user_version` (SQLite) and the
`elspeth_schema_identity` table (epoch 29 onwards; the only marker on PostgreSQL). Epoch 2 on
PostgreSQL has no marker at all and is recognised by its columns. Whatever the markers say,
every column our table models read must exist, so a half-migrated or foreign database is
refused at start-up rather than failing on the first query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import UnsupportedDatabase
from .tables import OPTIONAL_TABLES, SUPPORTED_EPOCHS, tables_for

# What each epoch's writer was; the epoch is all a database records about its writer.
ELSPETH_VERSIONS = {2: "0.4.1", 29: "0.7.1"}


@dataclass(frozen=True, slots=True)
class EpochInfo:
    epoch: int
    user_version: int | None
    identity_epoch: int | None
    absent_tables: frozenset[str] = frozenset()  # of tables.OPTIONAL_TABLES


def _supported() -> str:
    return ", ".join(str(e) for e in SUPPORTED_EPOCHS)


async def _columns(conn: AsyncConnection) -> dict[str, set[str]]:
    if conn.dialect.name == "sqlite":
        result = await conn.execute(text(
            "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
            "WHERE m.type = 'table'"))
    else:
        result = await conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"))
    columns: dict[str, set[str]] = {}
    for table, column in result:
        columns.setdefault(str(table), set()).add(str(column))
    return columns


async def detect_epoch(conn: AsyncConnection) -> EpochInfo:
    columns = await _columns(conn)
    if "runs" not in columns or "tokens" not in columns or "token_outcomes" not in columns:
        raise UnsupportedDatabase(
            "The database is not an ELSPETH Landscape: it has no runs, tokens and "
            "token_outcomes tables")

    user_version: int | None = None
    if conn.dialect.name == "sqlite":
        user_version = int((await conn.execute(text("PRAGMA user_version"))).scalar_one())

    identity_epoch: int | None = None
    if "elspeth_schema_identity" in columns:
        rows = (await conn.execute(text(
            "SELECT application_id, store_kind, schema_epoch FROM elspeth_schema_identity"))).all()
        if len(rows) != 1:
            raise UnsupportedDatabase(
                f"elspeth_schema_identity must hold exactly one row; it holds {len(rows)}")
        application, store_kind, identity = rows[0]
        if application != "elspeth" or store_kind != "landscape":
            raise UnsupportedDatabase(
                f"elspeth_schema_identity names a {application!r} {store_kind!r} store, "
                "not an ELSPETH landscape")
        identity_epoch = int(identity)

    if identity_epoch is not None:
        if user_version not in (None, 0, identity_epoch):
            raise UnsupportedDatabase(
                f"Conflicting epoch markers: user_version {user_version}, "
                f"elspeth_schema_identity {identity_epoch}")
        epoch = identity_epoch
    elif user_version:
        epoch = user_version
    elif "is_terminal" in columns["token_outcomes"]:
        # No marker: only epoch 2 written to PostgreSQL looks like this.
        epoch = 2
    else:
        raise UnsupportedDatabase(
            "The Landscape records no schema epoch (no user_version, no "
            f"elspeth_schema_identity); supported epochs: {_supported()}")

    if epoch not in SUPPORTED_EPOCHS:
        raise UnsupportedDatabase(
            f"Landscape schema epoch {epoch} is not supported by this version of "
            f"landscape-graphql; supported epochs: {_supported()}",
            epoch=epoch, supportedEpochs=list(SUPPORTED_EPOCHS))

    models = tables_for(epoch).metadata.tables
    absent = frozenset(name for name in OPTIONAL_TABLES if name in models and name not in columns)
    missing = [
        f"{table.name}.{column.name}"
        for table in tables_for(epoch).metadata.sorted_tables
        if table.name not in absent
        for column in table.columns
        if column.name not in columns.get(table.name, set())
    ]
    if missing:
        shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
        raise UnsupportedDatabase(
            f"The database says epoch {epoch} but lacks {len(missing)} of its columns "
            f"({shown})", epoch=epoch)
    return EpochInfo(epoch=epoch, user_version=user_version, identity_epoch=identity_epoch, absent_tables=absent)
