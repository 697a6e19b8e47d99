"""Binding a whole key set as ONE parameter, so a statement's text never depends on its size.

A loader batch of 1 key and one of 10,000 keys compile to the same SQL (one cache entry, no
999-variable limit): SQLite unpacks a JSON array with `json_each`, PostgreSQL an array with
`= ANY(...)` / `unnest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ARRAY, ColumnElement, String, any_, bindparam, func, select, tuple_
from sqlalchemy.sql.elements import KeyedColumnElement


def in_keys(column: KeyedColumnElement[Any], keys: Sequence[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(keys), type_=ARRAY(String)))
    values = func.json_each(bindparam(None, orjson.dumps(list(keys)).decode(), type_=String))
    table = values.table_valued("value")
    return column.in_(select(table.c.value).scalar_subquery())


def in_pairs(first: KeyedColumnElement[Any], second: KeyedColumnElement[Any],
             keys: Sequence[tuple[str, str]], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        firsts = bindparam(None, [k[0] for k in keys], type_=ARRAY(String))
        seconds = bindparam(None, [k[1] for k in keys], type_=ARRAY(String))
        return tuple_(first, second).in_(select(func.unnest(firsts), func.unnest(seconds)))
    values = func.json_each(bindparam(None, orjson.dumps([list(k) for k in keys]).decode(),
                                      type_=String)).table_valued("value")
    return tuple_(first, second).in_(
        select(func.json_extract(values.c.value, "$[0]"), func.json_extract(values.c.value, "$[1]")))
