"""SQLCipher-encrypted Landscapes: a read-only aiosqlite connection keyed with the passphrase.

ELSPETH can encrypt its SQLite Landscape with SQLCipher (`sqlcipher3`, SQLCipher 4 defaults,
`PRAGMA key` with the passphrase). We use the `sqlcipher3` wheel from PyPI, which links
SQLCipher and its crypto statically, so nothing is needed from the operating system.

aiosqlite runs any sqlite3-compatible connection on its worker thread, so an
`aiosqlite.Connection` over a sqlcipher3 connection is what SQLAlchemy's aiosqlite dialect
gets from `create_async_engine("sqlite+aiosqlite://", async_creator=...)`.

sqlcipher3 raises its own exception classes, which neither aiosqlite nor SQLAlchemy know (they
expect the `sqlite3` ones); without translation SQLAlchemy would not wrap them, would not
recognise a dropped connection, and our error mapping would miss them. So the sqlcipher3
connection is wrapped, and every error it raises is re-raised as the `sqlite3` exception of
the same name.

The key never appears in a message, a log line or an exception's context.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from urllib.parse import quote

import aiosqlite

from ..extras import require

__all__ = ["WrongKeyError", "connect_sqlcipher", "encrypt_copy", "sqlcipher_module"]


class WrongKeyError(Exception):
    """The key does not decrypt the file (or the file is not a SQLCipher/SQLite database)."""


def sqlcipher_module() -> ModuleType:
    """sqlcipher3; `extras.MissingExtra` naming `[sqlcipher]` when it is not installed."""
    return require("sqlcipher")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("the SQLCipher key must be a non-empty string")
    if "\x00" in key:
        raise ValueError("the SQLCipher key must not contain a NUL character")
    return key


def _key_literal(key: str) -> str:
    # PRAGMA takes no bound parameters, so the key is written as an SQL string literal:
    # quotes doubled, nothing else can end the literal. SQLCipher sees the same passphrase
    # as from ELSPETH's double-quoted form (and treats x'…' raw keys the same way).
    return "'" + _check_key(key).replace("'", "''") + "'"


def _translate(exc: BaseException) -> BaseException:
    """The sqlite3 exception of the same class name, so callers need to know only sqlite3."""
    target = getattr(sqlite3, type(exc).__name__, None)
    if isinstance(target, type) and issubclass(target, sqlite3.Error):
        new = target(*exc.args)
        for attr in ("sqlite_errorcode", "sqlite_errorname"):
            if hasattr(exc, attr):
                setattr(new, attr, getattr(exc, attr))
        return new
    return exc


class _Translating:
    """Forwards to a sqlcipher3 object, translating the errors its methods raise.

    Methods returning a cursor return it wrapped too, so fetches are translated as well.
    """

    __slots__ = ("_errors", "_target")

    def __init__(self, target: Any, errors: type[BaseException]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_errors", errors)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except self._errors as exc:
            raise _translate(exc) from None
        if type(result).__name__ == "Cursor":
            return _Translating(result, self._errors)
        return result

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if callable(attr):
            def method(*args: Any, **kwargs: Any) -> Any:
                return self._call(attr, *args, **kwargs)
            return method
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        # SQLAlchemy sets isolation_level on the connection; it must reach the real one.
        setattr(self._target, name, value)

    def __iter__(self) -> Iterator[Any]:
        it = iter(self._target)
        while True:
            try:
                row = next(it)
            except StopIteration:
                return
            except self._errors as exc:
                raise _translate(exc) from None
            yield row


def _open(path: Path, key: str, readonly: bool) -> Any:
    module = sqlcipher_module()
    # mode=ro: SQLCipher itself refuses writes; mode=rw: never create a missing file. The path
    # is URI-quoted so '?' or '#' in a file name cannot add URI parameters.
    uri = f"file:{quote(str(path.resolve()))}?mode={'ro' if readonly else 'rw'}"
    literal = _key_literal(key)
    try:
        conn = module.connect(uri, uri=True, check_same_thread=False)
    except module.Error as exc:
        raise _translate(exc) from None
    wrong_key = False
    try:
        # The key must be the first statement on the connection.
        conn.execute(f"PRAGMA key = {literal}")
        del literal
        # SQLCipher otherwise prints its own errors (e.g. a failed HMAC on a wrong key) to
        # stderr; we report them as exceptions instead.
        conn.execute("PRAGMA cipher_log_level = NONE")
        try:
            # SQLCipher decrypts lazily: the first read of the schema is what tells a wrong key.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except module.DatabaseError as exc:
            if "not a database" not in str(exc):
                raise _translate(exc) from None
            wrong_key = True
        if readonly and not wrong_key:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    if wrong_key:
        conn.close()
        # Raised outside the handler so that it carries no context at all.
        raise WrongKeyError(f"Cannot decrypt {path.name}: the key is wrong, or the file is not "
                            "a SQLCipher database")
    return _Translating(conn, module.Error)


async def connect_sqlcipher(path: str, key: str, *, readonly: bool = True,
                            iter_chunk_size: int = 64) -> aiosqlite.Connection:
    """Open an encrypted SQLite file through aiosqlite; read-only unless told otherwise.

    Raises `WrongKeyError` when the key does not decrypt it, `extras.MissingExtra` without
    sqlcipher3, `sqlite3.OperationalError` when the file cannot be opened.
    """
    target = Path(path)
    if not target.is_file():
        # SQLite's own message for this ("unable to open database file") names nothing.
        raise sqlite3.OperationalError(f"No database file at {target}")

    # Opened and verified on a worker thread of our own, not inside aiosqlite's connector:
    # when that connector raises, aiosqlite queues a stop nobody awaits, and its thread later
    # reports to an event loop that may be closed by then.
    raw = cast(sqlite3.Connection, await asyncio.to_thread(_open, target, key, readonly))
    try:
        return await aiosqlite.Connection(lambda: raw, iter_chunk_size)
    except BaseException:
        raw.close()
        raise


def encrypt_copy(src_sqlite: str | os.PathLike[str], dst: str | os.PathLike[str], key: str) -> None:
    """Write an encrypted copy of a plain SQLite file (tests use it on fixture copies).

    `sqlcipher_export` copies the schema and rows; `user_version` (the Landscape epoch) is set
    again explicitly so the copy says the same epoch whatever the export carries over.
    """
    src, out = Path(src_sqlite), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(src)
    if out.exists():
        raise FileExistsError(out)
    module = sqlcipher_module()
    # The source is attached read-only by URI (so a WAL source is never written to); the
    # main database is only a place to run the export from.
    conn = module.connect(":memory:", uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS plain KEY ''", (f"file:{quote(str(src.resolve()))}?mode=ro",))
        user_version = int(conn.execute("PRAGMA plain.user_version").fetchone()[0])
        conn.execute("ATTACH DATABASE ? AS encrypted KEY ?", (str(out), _check_key(key)))
        conn.execute("SELECT sqlcipher_export('encrypted', 'plain')")
        conn.execute(f"PRAGMA encrypted.user_version = {user_version}")
        conn.execute("DETACH DATABASE encrypted")
        conn.execute("DETACH DATABASE plain")
    except module.Error as exc:
        raise _translate(exc) from None
    finally:
        conn.close()
