"""Relation fields, each declared once, for Strawberry and for the executor's fast path.

    token = RelationsOf(R.TokenRecord)

    @strawberry.type
    class Token:
        row = token.relation(Loaders.row_by_id, lambda t: t.row_id, graphql_type="Row | None")

builds the field's resolver (load the parent's key through the request's loader, then apply
`then`) and keeps the `Relation` it runs in the field's metadata, where the executor's planner
reads it (execution/relations.py). A field the planner cannot call directly is resolved by the
same resolver, so both paths run the same code.

`RelationsOf` fixes the parent's record type, so mypy checks the key and `then` against the
record and the loader's value type; `graphql_type` is the field's GraphQL type, a string
resolved in the declaring module like an annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property
from typing import Any, Generic, TypeVar

import strawberry

from ..context import Info
from ..execution.relations import RELATION, Relation
from ..loaders import Loaders
from ..loaders._base import Loader

__all__ = ["RelationsOf", "record_field"]

P = TypeVar("P")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RelationsOf(Generic[P]):
    """Builds the relation fields of a type whose parent objects are `P` records."""

    def __init__(self, parent: type[P]) -> None:
        self.parent = parent

    def relation(self, loader: Callable[[Loaders], Loader[K, V]], key: Callable[[P], K | None],
                 then: Callable[[P, V], Any] | None = None, *, graphql_type: object,
                 description: str | None = None) -> Any:
        """A field resolved by `loader` (a `Loaders` property) at `key(parent)`; a None key
        makes the field null without loading anything."""
        if not isinstance(loader, cached_property) or loader.attrname is None:
            raise TypeError(f"{loader!r} is not a property of Loaders")
        declared: Relation[P, K, V] = Relation(loader.attrname, key, then)

        async def resolve(root: Any, info: Info) -> Any:
            return await declared.resolve(root, info.context.loaders)

        return strawberry.field(resolver=resolve, graphql_type=graphql_type, description=description,
                                metadata={RELATION: declared})


def record_field(resolver: Callable[..., object], *, description: str | None = None) -> Any:
    """`strawberry.field(resolver=...)` for an attribute whose annotation is the GraphQL type and
    whose resolver returns the record that type presents: the resolver is typed by what it
    returns, the attribute by its GraphQL type."""
    return strawberry.field(resolver=resolver, description=description)
