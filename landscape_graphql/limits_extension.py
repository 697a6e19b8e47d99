"""The query limits applied to a request through Strawberry's extension hooks.

The limits themselves, their errors and the linear-time document checks are declared in
`limits.py`; the node estimate is `_node_budget.py`'s. This module only says when each runs:
parse (tokens, document checks), validation (the limit rules), then the node budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from ._node_budget import cached_estimate, graphql_schema
from .limits import (
    DEFAULT_QUERY_LIMITS,
    QueryLimits,
    check_document,
    check_node_budget,
    limit_rules,
    parse_with_limits,
)

__all__ = ["QueryLimitsExtension"]


class QueryLimitsExtension(SchemaExtension):
    """Applies every query limit before execution and reports the estimate.

    Register with ``QueryLimitsExtension.factory(limits)``, before any
    ``ParserCache`` (which parses unconditionally; this extension already caches
    parsed documents, so ParserCache can simply be dropped).  The estimate goes to
    ``execution_context.extensions_results["landscape"]["estimatedNodes"]``,
    merged with anything else stored under ``"landscape"``.
    """

    def __init__(
        self,
        *,
        limits: QueryLimits = DEFAULT_QUERY_LIMITS,
        execution_context: ExecutionContext | None = None,
    ) -> None:
        self.limits = limits
        if execution_context is not None:
            self.execution_context = execution_context

    @classmethod
    def factory(cls, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> Callable[[], QueryLimitsExtension]:
        return functools.partial(cls, limits=limits)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *limit_rules(self.limits))
        # Bounds any other parser in the chain too (Strawberry's own, ParserCache),
        # should one run before on_parse below.
        context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # A QueryLimitError raised here ends the request before any other parse
        # and becomes the response's only error.
        if context.graphql_document is None and context.query:
            # The app may have parsed a long text off the loop already (_off_loop_parse).
            extras = getattr(context.context, "extras", None)
            parsed = extras.get("parsed") if isinstance(extras, dict) else None
            if parsed is not None and parsed[0] is context.query:
                context.graphql_document = parsed[1]
            else:
                context.graphql_document = parse_with_limits(context.query, self.limits)
        if context.graphql_document is not None:
            # The name the client gave: `operation_name` falls back to the first operation's.
            check_document(context.graphql_document, context._provided_operation_name, self.limits)
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        found = cached_estimate(
            context.graphql_document,
            graphql_schema(context.schema),
            context.variables,
            context.operation_name,
            self.limits,
        )
        landscape = context.extensions_results.setdefault("landscape", {})
        landscape["estimatedNodes"] = found
        check_node_budget(found, self.limits)
