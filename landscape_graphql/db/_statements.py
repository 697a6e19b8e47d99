"""The hot path's statements: built and compiled once per (epoch, dialect), rows laid out by records.

Building, cache-keying and compiling a Core statement costs more than running a small indexed
SELECT, so every lookup, page and lineage level is compiled once and run as a `Prepared`
statement with its values as parameters. Its record columns come in `records.COLUMNS` order so
rows map by position.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlalchemy import null
from sqlalchemy.sql import ClauseElement

from . import records as R
from ._keys import key_set
from .session import DbSession, Prepared, prepare

# One entry per statement shape: a fixed number, whatever the requests.
_PREPARED: dict[tuple[Hashable, int, str], Prepared] = {}


def prepared(db: DbSession, key: Hashable, build: Callable[[], ClauseElement],
             dynamic: Sequence[str] = ("keys",)) -> Prepared:
    """The statement `key` names for this session's epoch and dialect, built on first use;
    `dynamic` names the parameters given at each run."""
    full = (key, db.epoch, db.dialect)
    found = _PREPARED.get(full)
    if found is None:
        found = _PREPARED[full] = prepare(build(), db.landscape.engine.dialect, dynamic)
    return found


async def fetch_by_keys(db: DbSession, key: Hashable, build: Callable[[], ClauseElement],
                        keys: Sequence[str]) -> Sequence[Any]:
    """Run the statement `key` names, whose one parameter is the key set (`_keys.in_keys`)."""
    return await db.fetch(prepared(db, key, build), {"keys": key_set(db.dialect, keys)})


async def fetch_scoped(db: DbSession, key: Hashable, build: Callable[[bool], ClauseElement],
                       keys: Sequence[str]) -> Sequence[Any]:
    """`fetch_by_keys` for a lookup that a scoped caller sees only within its runs.

    `build(scoped)` adds `_keys.in_runs` to the statement when `scoped`; the scoped and the
    unscoped statement are prepared once each.
    """
    runs = db.allowed_runs
    if runs is None:
        return await fetch_by_keys(db, key, lambda: build(False), keys)
    statement = prepared(db, (key, "scoped"), lambda: build(True), ("keys", "runs"))
    return await db.fetch(statement, {"keys": key_set(db.dialect, keys),
                                      "runs": key_set(db.dialect, sorted(runs))})


def record_columns(table: Any, cls: type) -> list[Any]:
    """`table`'s columns in `records.COLUMNS[cls]` order, NULL for those its epoch lacks."""
    return [table.c[name] if name in table.c else null().label(name) for name in R.COLUMNS[cls]]
