"""Turning driver exceptions into errors a client may see.

Driver messages can carry SQL text and server paths, so none of them is passed on: each known
fault becomes a fixed sentence with a code, and anything else stays an internal error.
"""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import exc as sa_exc

from ..errors import DatabaseBusy, DatabaseUnavailable, LandscapeError, QueryTimeout


def translate_db_error(exc: BaseException) -> BaseException:
    """The client-facing error for a database fault, or `exc` itself when it is not one."""
    if isinstance(exc, LandscapeError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseBusy("All database connections are in use; try again shortly")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return QueryTimeout("The query took longer than the request timeout and was cancelled")
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable("The database connection was lost; try again")
    message = str(original).lower()
    if isinstance(original, sqlite3.OperationalError | sqlite3.DatabaseError):
        if "locked" in message or "busy" in message:
            return DatabaseBusy("The database is locked by a writer; try again shortly")
        if "interrupted" in message:
            return QueryTimeout("The query took longer than the request timeout and was cancelled")
        if "malformed" in message or "not a database" in message:
            return DatabaseUnavailable("The database file is corrupt or not a SQLite database")
        if "unable to open" in message or "disk i/o" in message or "no such table" in message:
            return DatabaseUnavailable("The database file cannot be read")
        return exc
    name = type(original).__name__
    # SQLAlchemy's asyncpg adapter wraps the driver's exception (its class is then "Error"):
    # the driver's own is its cause. 57014 is query_canceled (a cancel or statement_timeout).
    driver = original.__cause__ if name == "Error" and original.__cause__ is not None else original
    if type(driver).__name__ == "QueryCanceledError" or getattr(driver, "sqlstate", None) == "57014":
        return QueryTimeout("The query took longer than the request timeout and was cancelled")
    if name in {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionRefusedError",
                "InterfaceError", "ConnectionFailureError", "AdminShutdownError",
                "InternalClientError", "TooManyConnectionsError"} or isinstance(original, OSError):
        return DatabaseUnavailable("The database server cannot be reached")
    return exc
