"""Scalar and enum output coercion without graphql-core's per-value dispatch.

A leaf's fast coercer returns the same value graphql-core's `coerce_output_value` would for
the values audit records hold (a `str` for String/ID, an in-range `int`, a finite `float`, a
`bool`, a known enum member, a `datetime`), and `MISS` for anything else, which the executor
then coerces the ordinary way, errors included. Nothing is guessed: each shortcut is taken
only when the type's coercer is the very function it stands in for.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Final

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLScalarType,
    GraphQLString,
)
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT

__all__ = ["MISS", "Coercer", "enum_of", "fast_coercer", "kind_of"]


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()
"""Returned by a fast coercer for a value it does not handle."""

Coercer = Callable[[Any], Any]


def _string(value: Any) -> Any:
    return value if type(value) is str else MISS


def _int(value: Any) -> Any:
    if type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
        return value
    return MISS


_isfinite = math.isfinite


def _float(value: Any) -> Any:
    if type(value) is float and _isfinite(value):
        return value
    return MISS


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else MISS


def _isoformat(value: Any) -> Any:
    return value.isoformat() if type(value) is datetime else MISS


# What each shortcut checks, for the compiled object builders (see builders.py); an enum's
# shortcut also gives its enum class and member names. Weak: enum shortcuts are built per type.
_KINDS: weakref.WeakKeyDictionary[Coercer, str] = weakref.WeakKeyDictionary()
_KINDS.update([(_string, "str"), (_int, "int"), (_float, "float"), (_boolean, "bool"), (_isoformat, "datetime")])
_ENUMS: weakref.WeakKeyDictionary[Coercer, tuple[type[Enum], dict[Enum, Any]]] = weakref.WeakKeyDictionary()


def kind_of(coercer: Coercer | None) -> str | None:
    """What a shortcut checks ("str", "int", "float", "bool", "datetime", "enum"), if known."""
    return None if coercer is None else _KINDS.get(coercer)


def enum_of(coercer: Coercer) -> tuple[type[Enum], dict[Enum, Any]]:
    """An enum shortcut's enum class and its members' output names."""
    return _ENUMS[coercer]


# The built-in scalars' coercers, by the functions they stand in for.
_BUILTIN: dict[GraphQLScalarType, Coercer] = {
    GraphQLString: _string,
    GraphQLID: _string,
    GraphQLInt: _int,
    GraphQLFloat: _float,
    GraphQLBoolean: _boolean,
}


def _strawberry_isoformat() -> Any:
    try:
        from strawberry.schema.types.base_scalars import isoformat
    except ImportError:  # pragma: no cover - a Strawberry without it gets no shortcut
        return None
    return isoformat


_ISOFORMAT = _strawberry_isoformat()


def _enum_coercer(enum_type: GraphQLEnumType) -> Coercer | None:
    """Members of the Python enum a Strawberry enum type wraps, memoised by identity."""
    wrapped = getattr(enum_type, "wrapped_cls", None)
    if not (isinstance(wrapped, type) and issubclass(wrapped, Enum)):
        return None
    # Computed with the type's own coercer, so a name is whatever it would have answered.
    names = {member: enum_type.coerce_output_value(member) for member in wrapped}

    def coerce(value: Any) -> Any:
        if type(value) is wrapped:
            return names[value]
        return MISS

    _KINDS[coerce] = "enum"
    _ENUMS[coerce] = (wrapped, names)
    return coerce


@functools.lru_cache(maxsize=256)
def fast_coercer(leaf: GraphQLLeafType) -> Coercer | None:
    """The shortcut for `leaf`, or None when its coercion must always run as it is.

    One per type (cached): an enum's table is built once, and builders compiled for one
    shape of selection can be found again by their coercers."""
    if isinstance(leaf, GraphQLEnumType):
        return _enum_coercer(leaf)
    builtin = _BUILTIN.get(leaf) if isinstance(leaf, GraphQLScalarType) else None
    if builtin is not None:
        return builtin if _is_builtin_coercion(leaf) else None
    if _ISOFORMAT is not None and getattr(leaf, "coerce_output_value", None) is _ISOFORMAT:
        return _isoformat
    return None


def _is_builtin_coercion(leaf: GraphQLScalarType) -> bool:
    # graphql-core's standard scalars keep their module-level serializers; a schema that
    # replaced one gets no shortcut for it.
    from graphql.type import scalars

    expected = {
        "String": scalars.serialize_string, "ID": scalars.serialize_id, "Int": scalars.serialize_int,
        "Float": scalars.serialize_float, "Boolean": scalars.serialize_boolean,
    }.get(leaf.name)
    return expected is not None and leaf.coerce_output_value is expected
