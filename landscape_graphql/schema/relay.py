"""Relay plumbing: the Node interface, global ids and keyset-backed connections."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson
import strawberry

from ..context import Info
from ..db.pages import Page, count
from ..errors import BadArgument

T = TypeVar("T")

NODE_KINDS = ("Run", "PipelineNode", "PipelineEdge", "Row", "Token", "NodeState", "RoutingEvent", "Call",
              "Operation", "Artifact", "Batch", "ValidationError", "TransformError")


def to_global_id(kind: str, *key: str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(orjson.dumps([kind, *key])).decode().rstrip("="))


def from_global_id(global_id: str) -> tuple[str, list[str]]:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadArgument("id", "is not a global id of this API") from None
    if (not isinstance(payload, list) or len(payload) < 2 or payload[0] not in NODE_KINDS
            or not all(isinstance(p, str) for p in payload)):
        raise BadArgument("id", "is not a global id of this API")
    return payload[0], payload[1:]


@strawberry.interface(description="An object with a global id, refetchable with node(id:).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A keyset-paginated list: pages stay correct while a run grows.")
class Connection(Generic[T]):
    page: strawberry.Private[Page[Any]]

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        return [Edge(cursor=c, node=n) for c, n in zip(self.page.cursors, self.page.items, strict=True)]

    @strawberry.field(description="The objects of this page, without cursors.")
    def nodes(self) -> list[T]:
        return list(self.page.items)

    @strawberry.field
    def page_info(self) -> PageInfo:
        cursors: Sequence[str] = self.page.cursors
        return PageInfo(has_next_page=self.page.has_next_page,
                        has_previous_page=self.page.has_previous_page,
                        start_cursor=cursors[0] if cursors else None,
                        end_cursor=cursors[-1] if cursors else None)

    @strawberry.field(description="How many objects match, over all pages (one COUNT statement).")
    async def total_count(self, info: Info) -> int:
        return await count(info.context.db, self.page)
