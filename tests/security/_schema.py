"""A small lineage-shaped schema for exercising the security pieces.

Every resolver bumps ``info.context["calls"]`` so a test can prove a request
was refused before anything (standing in for SQL) ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from landscape_graphql.errors import ClientFacingError
from landscape_graphql.limits import DEFAULT_QUERY_LIMITS, QueryLimits, check_page_size

LIMITS_FOR_RESOLVERS: list[QueryLimits] = [DEFAULT_QUERY_LIMITS]


def _bump(info: Info) -> None:
    info.context["calls"] += 1


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Token:
    token_id: str

    @strawberry.field
    def ancestors(self, info: Info, max_depth: int | None = None) -> list[Token]:
        _bump(info)
        return [Token(token_id=f"{self.token_id}.a{i}") for i in range(min(max_depth or 2, 2))]

    @strawberry.field
    def descendants(self, info: Info, max_depth: int = 3) -> list[Token]:
        _bump(info)
        return [Token(token_id=f"{self.token_id}.d{i}") for i in range(min(max_depth, 2))]

    @strawberry.field
    def children(self, info: Info) -> list[Token]:
        _bump(info)
        return [Token(token_id=f"{self.token_id}.c0")]

    @strawberry.field
    def lineage(self, info: Info, max_depth: int | None = None) -> LineageGraph:
        _bump(info)
        return LineageGraph(tokens=[self], root=self)


@strawberry.type
class LineageGraph:
    tokens: list[Token]
    root: Token


def _page_size(first: int | None, last: int | None) -> int:
    limits = LIMITS_FOR_RESOLVERS[0]
    check_page_size(first, last, limits)
    return first if first is not None else last if last is not None else limits.default_page_size


@strawberry.type
class TokenEdge:
    cursor: str
    node: Token


@strawberry.type
class TokenConnection:
    edges: list[TokenEdge]
    page_info: PageInfo


@strawberry.type
class Run:
    run_id: str

    @strawberry.field
    def tokens(self, info: Info, first: int | None = None, last: int | None = None) -> TokenConnection:
        _bump(info)
        size = _page_size(first, last)
        edges = [
            TokenEdge(cursor=str(i), node=Token(token_id=f"{self.run_id}-t{i}")) for i in range(min(size, 3))
        ]
        return TokenConnection(edges=edges, page_info=PageInfo(has_next_page=size < 3, end_cursor=None))


@strawberry.type
class RunEdge:
    cursor: str
    node: Run


@strawberry.type
class RunConnection:
    edges: list[RunEdge]
    page_info: PageInfo


@strawberry.type
class Query:
    @strawberry.field
    def runs(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None
    ) -> RunConnection:
        _bump(info)
        size = _page_size(first, last)
        edges = [RunEdge(cursor=str(i), node=Run(run_id=f"run-{i}")) for i in range(min(size, 3))]
        return RunConnection(edges=edges, page_info=PageInfo(has_next_page=False, end_cursor=None))

    @strawberry.field
    def token(self, info: Info, token_id: str) -> Token | None:
        _bump(info)
        return Token(token_id=token_id)

    @strawberry.field
    def tokens_by_id(self, info: Info, ids: list[str]) -> list[Token]:
        _bump(info)
        return [Token(token_id=i) for i in ids]

    @strawberry.field
    def hello(self, info: Info) -> str:
        _bump(info)
        return "hello"

    @strawberry.field
    def broken(self, info: Info) -> str:
        _bump(info)
        raise RuntimeError('SELECT secret FROM tokens WHERE run_id = "run-7" failed')

    @strawberry.field
    def flaky(self, info: Info) -> str | None:
        _bump(info)
        raise RuntimeError("secret flaky failure")

    @strawberry.field
    def missing(self, info: Info) -> str:
        _bump(info)
        raise ClientFacingError("Run not found", code="NOT_FOUND", extensions={"runId": "run-x"})

    @strawberry.field
    def bad_null(self, info: Info) -> str:
        _bump(info)
        return None  # type: ignore[return-value]


ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]


def make_schema(extensions: Sequence[ExtensionFactory] = ()) -> strawberry.Schema:
    return strawberry.Schema(query=Query, extensions=list(extensions))


async def run(
    schema: strawberry.Schema,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> tuple[Any, int]:
    """Execute and return (result, resolver calls)."""
    context: dict[str, Any] = {"calls": 0}
    result = await schema.execute(
        query, variable_values=variables, context_value=context, operation_name=operation_name
    )
    return result, context["calls"]
