"""The GraphQL schema: one module per domain, assembled here."""

from __future__ import annotations

import strawberry

from .._caches import BoundedValidationCache
from ..error_masking import MaskingSchema, introspection_extensions
from ..execution import executor_class
from ..limits_extension import QueryLimitsExtension
from ..settings import Settings
from .query import NODE_TYPES, Query

# Validation results are cached bounded by bytes (_caches.py). Parsed documents are cached,
# also by bytes, by the query-limits extension, which parses with its token limit;
# Strawberry's ParserCache would parse before it.


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    return MaskingSchema(
        query=Query,
        types=NODE_TYPES,
        extensions=[
            QueryLimitsExtension.factory(settings.limits),
            BoundedValidationCache,
            *introspection_extensions(settings.introspection),
        ],
        hide_suggestions=not settings.introspection,
        execution_context_class=executor_class(settings),
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"
