"""Object builders compiled once per selection plan.

For a plan's plain leaf fields, a builder is one generated function that reads each attribute,
checks it is of the type the field's fast coercer takes (a `str` for String, an in-range `int`,
a finite `float`, a known enum member, a `datetime`), coerces it inline, and returns the
response dict in selection order, with None where a resolver or object field goes (the executor
fills those). Any other value makes it raise; the executor then completes that object the
general way, which reads the same attributes again and raises, with a path, what graphql-core
raises. Reading a plain attribute twice is harmless: these are Strawberry fields without
resolvers, over frozen records.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT

from .leaves import enum_of, kind_of
from .plans import PLAIN, TYPENAME, ObjectPlan

__all__ = ["Fallback", "compile_builder"]


class Fallback(Exception):
    """A value the builder does not take: complete this object the general way."""


def _check(kind: str, i: int, nullable: bool) -> list[str]:
    v = f"v{i}"
    guard = f"{v} is not None and " if nullable else ""
    if kind == "str":
        return [f"    if {guard}type({v}) is not str: raise _F"]
    if kind == "bool":
        return [f"    if {guard}type({v}) is not bool: raise _F"]
    if kind == "int":
        return [f"    if {guard}(type({v}) is not int or not _MIN <= {v} <= _MAX): raise _F"]
    if kind == "float":
        return [f"    if {guard}(type({v}) is not float or not _finite({v})): raise _F"]
    if kind == "datetime":
        lines = [f"    if type({v}) is _dt: {v} = {v}.isoformat()"]
        lines.append(f"    elif {v} is not None: raise _F" if nullable else "    else: raise _F")
        return lines
    if kind == "enum":
        lines = [f"    if type({v}) is _K{i}: {v} = _N{i}[{v}]"]
        lines.append(f"    elif {v} is not None: raise _F" if nullable else "    else: raise _F")
        return lines
    raise ValueError(kind)


_Shape = tuple[Any, ...]
_COMPILED: dict[_Shape, Callable[[Any], dict[str, Any]] | None] = {}
_MAX_COMPILED = 1024  # distinct selection shapes kept; a client cannot grow it without bound


def _shape(plan: ObjectPlan) -> _Shape:
    """What the generated code depends on: names, kinds and leaf checks, not the request."""
    return (plan.object_type.name, tuple(
        (f.name, f.kind, f.is_leaf, f.nullable, f.leaf,
         f.strawberry_field.python_name if f.strawberry_field is not None else None)
        for f in plan.fields))


def compile_builder(plan: ObjectPlan) -> Callable[[Any], dict[str, Any]] | None:
    """The builder of `plan`, or None when a leaf field has no inline coercion.

    Compiled once per selection shape: the same query in every request reuses its builders."""
    shape = _shape(plan)
    if shape in _COMPILED:
        return _COMPILED[shape]
    builder = _compile(plan)
    if len(_COMPILED) >= _MAX_COMPILED:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[shape] = builder
    return builder


def _compile(plan: ObjectPlan) -> Callable[[Any], dict[str, Any]] | None:
    namespace: dict[str, Any] = {"_F": Fallback, "_MIN": GRAPHQL_MIN_INT, "_MAX": GRAPHQL_MAX_INT,
                                 "_finite": math.isfinite, "_dt": datetime}
    lines: list[str] = []
    items: list[str] = []
    for i, field in enumerate(plan.fields):
        key = repr(field.name)
        if field.kind == TYPENAME:
            items.append(f"{key}: {plan.object_type.name!r}")
            continue
        if field.kind != PLAIN or not field.is_leaf:
            items.append(f"{key}: None")
            continue
        kind = kind_of(field.leaf)
        if kind is None:
            return None
        attribute = field.strawberry_field.python_name
        if attribute.isidentifier() and not keyword.iskeyword(attribute):
            lines.append(f"    v{i} = s.{attribute}")
        else:
            namespace[f"_g{i}"] = field.getter
            lines.append(f"    v{i} = _g{i}(s)")
        if kind == "enum" and field.leaf is not None:
            namespace[f"_K{i}"], namespace[f"_N{i}"] = enum_of(field.leaf)
        lines += _check(kind, i, field.nullable)
        items.append(f"{key}: v{i}")
    source = "def build(s):\n" + "\n".join(lines) + "\n    return {" + ", ".join(items) + "}\n"
    exec(source, namespace)
    build: Callable[[Any], dict[str, Any]] = namespace["build"]
    return build
