"""The GraphQL schema: one module per domain, assembled here."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache

from .query import NODE_TYPES, Query

# Bounded: a client sending endless distinct queries cannot grow them without limit.
CACHE_SIZE = 512


def build_schema(extensions: Sequence[type[SchemaExtension] | SchemaExtension] = ()) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        types=NODE_TYPES,
        extensions=[ParserCache(maxsize=CACHE_SIZE), ValidationCache(maxsize=CACHE_SIZE), *extensions],
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"
