"""The request path for a document already parsed and validated: graphql-core's `execute` called
directly, without Strawberry's per-request operation machinery.

`strawberry.Schema.execute` builds an execution context, instantiates every extension and runs
their operation, parse, validate and execute hooks for each request; for a small query that is
most of the request's CPU. When the text's document is in the parse cache and validated without
errors for this schema (`_caches.known_valid`, filled by the validation cache extension on the
Strawberry path), what those hooks would still do per request is what this module does:

* `limits.check_document` with the operation name the client gave (the parse hook's check);
* the node estimate with the request's variables (`_node_budget.cached_estimate`, the validate
  hook's), reported as `extensions.landscape.estimatedNodes`;
* graphql-core's `execute` with the schema's executor class and Strawberry's arguments, its
  errors masked by the schema's `process_errors` (`error_masking.MaskingSchema`).

Anything else — a document not seen, an operation other than a query, a name the document does
not define, a limit refused, an estimate that raises — goes to `schema.execute`, which answers
it as always (and caches the document for next time). So errors of the request itself are
Strawberry's own; the direct path only ever runs what Strawberry would run next. It is taken only
for a schema whose extensions are exactly the ones whose hooks it reproduces (`DirectPath.for_schema`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, cast

from graphql import GraphQLError, OperationDefinitionNode, OperationType, execute
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import DisableIntrospection
from strawberry.types import ExecutionResult

from ._caches import BoundedValidationCache, known_valid
from ._node_budget import cached_estimate
from .error_masking import MaskingSchema
from .limits import QueryLimits, cached_document, check_document, check_node_budget
from .limits_extension import QueryLimitsExtension

__all__ = ["DirectPath"]

# Extensions whose every per-request effect the direct path reproduces: the limits (above), the
# validation cache and the introspection rule (both settled by `known_valid`).
_REPRODUCED: tuple[type, ...] = (BoundedValidationCache, DisableIntrospection)
# Strawberry's check, which graphql-core's annotation calls a type guard.
_is_awaitable = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


class DirectPath:
    """Runs a known-valid query of `schema` without its extension machinery (module docstring)."""

    def __init__(self, schema: MaskingSchema, limits: QueryLimits) -> None:
        self.schema = schema
        self.limits = limits
        self._core = schema._schema
        executor = schema.execution_context_class
        self._executor_kwargs: dict[str, Any] = {} if executor is None else {"executor_class": executor}

    @classmethod
    def for_schema(cls, schema: Any) -> DirectPath | None:
        """The direct path for `schema`, or None when it has an extension the path does not reproduce."""
        if not isinstance(schema, MaskingSchema) or schema.directives:
            return None
        limits: QueryLimits | None = None
        for extension in schema.extensions:
            if isinstance(extension, functools.partial) and extension.func is QueryLimitsExtension \
                    and limits is None and not extension.args:
                found = extension.keywords.get("limits")
                if not isinstance(found, QueryLimits):
                    return None
                limits = found
            elif not (isinstance(extension, type) and extension in _REPRODUCED):
                return None
        return None if limits is None else cls(schema, limits)

    async def execute(self, query: str, variables: dict[str, Any] | None, context: Any,
                      operation_name: str | None) -> ExecutionResult | None:
        """The result `schema.execute` would give, or None when this request is not for this path."""
        document = cached_document(query, self.limits)
        if document is None or not known_valid(document, self._core):
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            # Strawberry's choice: the first operation (check_document refuses several unnamed).
            chosen = operations[0] if operations else None
            resolved = chosen.name.value if chosen is not None and chosen.name else None
        else:
            chosen = next((o for o in operations if o.name and o.name.value == operation_name), None)
            resolved = operation_name
        if chosen is None or chosen.operation is not OperationType.QUERY:
            return None
        try:
            check_document(document, operation_name, self.limits)
            found = cached_estimate(document, self._core, variables, resolved, self.limits)
            check_node_budget(found, self.limits)
        except Exception:  # a refusal: Strawberry's path reports it, as it always has
            return None
        extensions = {"landscape": {"estimatedNodes": found}}
        try:
            result = await _awaited(execute(
                self._core, document, root_value=None, context_value=context,
                variable_values=variables, operation_name=resolved, middleware=MiddlewareManager(),
                is_awaitable=_is_awaitable, operation_extensions=None, **self._executor_kwargs))
        except Exception as exc:  # as Strawberry's execute: the error is masked, never raised
            error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            self.schema.process_errors([error])
            return ExecutionResult(data=None, errors=[error], extensions=extensions)
        if result.errors:
            self.schema.process_errors(result.errors)
        return ExecutionResult(data=result.data, errors=result.errors, extensions=extensions)


async def _awaited(value: Any) -> Any:
    return await value if _is_awaitable(value) else value
