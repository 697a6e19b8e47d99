"""Binding a whole key set as ONE parameter, so a statement's text never depends on its size.

A loader batch of 1 key and one of 10,000 keys compile to the same SQL (one prepared
statement, no 999-variable limit): SQLite unpacks a JSON array with `json_each`, PostgreSQL an
array with `= ANY(...)` / `unnest`. The conditions name their parameters (`keys`; pairs on
PostgreSQL `firsts` and `seconds`) so a statement is compiled once and run with `key_set` /
`pair_set` as its values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ARRAY, ColumnElement, String, any_, bindparam, func, select, tuple_
from sqlalchemy.sql.elements import KeyedColumnElement


def in_keys(dialect: str, column: KeyedColumnElement[Any]) -> ColumnElement[bool]:
    """`column` is one of the `keys` parameter's values."""
    if dialect == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(String)))
    values = func.json_each(bindparam("keys", type_=String)).table_valued("value")
    return column.in_(select(values.c.value).scalar_subquery())


def in_runs(dialect: str, column: KeyedColumnElement[Any] | ColumnElement[Any]) -> ColumnElement[bool]:
    """`column` is one of the caller's visible runs: the `runs` parameter (bound like `keys`).

    A scoped caller's lookups carry this condition so a record of a run it cannot see is
    never read: not in the answer, and not in the cost figures either.
    """
    if dialect == "postgresql":
        return column == any_(bindparam("runs", type_=ARRAY(String)))
    values = func.json_each(bindparam("runs", type_=String)).table_valued("value")
    return column.in_(select(values.c.value).scalar_subquery())


def key_set(dialect: str, keys: Sequence[str]) -> Any:
    """The value of the `keys` parameter of `in_keys`."""
    if dialect == "postgresql":
        return list(keys)
    return orjson.dumps(list(keys)).decode()


def in_pairs(dialect: str, first: KeyedColumnElement[Any],
             second: KeyedColumnElement[Any]) -> ColumnElement[bool]:
    """(`first`, `second`) is one of the pairs `pair_set` binds."""
    if dialect == "postgresql":
        firsts = bindparam("firsts", type_=ARRAY(String))
        seconds = bindparam("seconds", type_=ARRAY(String))
        return tuple_(first, second).in_(select(func.unnest(firsts), func.unnest(seconds)))
    values = func.json_each(bindparam("keys", type_=String)).table_valued("value")
    return tuple_(first, second).in_(
        select(func.json_extract(values.c.value, "$[0]"), func.json_extract(values.c.value, "$[1]")))


def pair_names(dialect: str) -> tuple[str, ...]:
    """The parameters `in_pairs` binds."""
    return ("firsts", "seconds") if dialect == "postgresql" else ("keys",)


def pair_set(dialect: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The values of the parameters of `in_pairs`."""
    if dialect == "postgresql":
        return {"firsts": [p[0] for p in pairs], "seconds": [p[1] for p in pairs]}
    return {"keys": orjson.dumps([list(p) for p in pairs]).decode()}
