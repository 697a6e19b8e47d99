"""What the breadth-first completion (_completion.py) keeps track of: positions in the response
and the work still to be done at them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLOutputType,
    GraphQLResolveInfo,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path

from .plans import FieldPlan, ObjectPlan
from .relations import Relation

if TYPE_CHECKING:
    from .executor import FastExecutor


def _nodes(details: FieldDetailsList) -> list[Any]:
    return [d.node for d in details]


class _Pos:
    """Where a completed object or list sits: for handling an error that reaches it later.

    `container[key] is value` while the value is still part of the response; a position whose
    chain breaks that was nulled, and the work below it is abandoned.
    """

    __slots__ = ("container", "details", "key", "parent", "path", "return_type", "value")

    def __init__(self, container: Any, key: Any, value: Any, return_type: GraphQLOutputType,
                 details: FieldDetailsList, path: Path, parent: _Pos | None) -> None:
        self.container = container
        self.key = key
        self.value = value
        self.return_type = return_type
        self.details = details
        self.path = path
        self.parent = parent


class _Job:
    """An awaitable field value (or list item) still to be completed into `container[key]`."""

    __slots__ = ("awaitable", "container", "details", "info", "key", "non_null", "path", "pos",
                 "return_type", "settled")

    def __init__(self, awaitable: Any, container: Any, key: Any, return_type: GraphQLOutputType,
                 details: FieldDetailsList, info: Any, path: Path, pos: _Pos | None,
                 settled: bool = False) -> None:
        self.awaitable = awaitable  # a coroutine to drive, or a future to wait on
        self.container = container
        self.key = key
        self.return_type = return_type
        self.details = details
        self.info = info
        self.path = path
        self.pos = pos  # the position of the object (or list) holding container
        self.settled = settled  # the awaited value is already complete (graphql-core's work)
        # For a settled value at a non-null position: the error graphql-core raises for null.
        self.non_null: str | None = None


class _LazyInfo:
    """A GraphQLResolveInfo built on first use.

    Completing a relation field's value needs an info only to pass to `is_type_of` (which the
    schema's types ignore) and for error messages; building one per object would cost more
    than the object. Attribute access gives the real info's attributes.
    """

    __slots__ = ("args", "built")

    def __init__(self, ex: FastExecutor, field: FieldPlan, plan: ObjectPlan, path: Path) -> None:
        self.args = (ex, field, plan, path)
        self.built: GraphQLResolveInfo[Any] | None = None

    def real(self) -> GraphQLResolveInfo[Any]:
        built = self.built
        if built is None:
            ex, field, plan, path = self.args
            built = self.built = ex.build_resolve_info(field.field_def, field.nodes, plan.object_type, path)
        return built

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def _real(info: Any) -> Any:
    return info.real() if type(info) is _LazyInfo else info


class _RelationGroup:
    """One relation field of many objects: their loads, waited for together (relations.py)."""

    __slots__ = ("cursor", "entries", "field", "plan", "relation")

    def __init__(self, field: FieldPlan, relation: Relation[Any, Any, Any], plan: ObjectPlan) -> None:
        self.field = field
        self.relation = relation
        self.plan = plan
        # (future, object dict, parent, field path, object position)
        self.entries: list[tuple[Any, dict[str, Any], Any, Path, _Pos | None]] = []
        self.cursor = 0  # entries before it are known done


async def _await_item(item: Awaitable[Any]) -> Any:
    return await item


class _Deferred:
    __slots__ = ()


_DEFERRED = _Deferred()
"""Placeholder for a value graphql-core is still completing (see `settle_stock`)."""


def _set_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
