"""What a client may learn from a failed request, and what only the server log sees: the
masking of GraphQL errors and the response entries made of them.

Three kinds of error reach the response:

* GraphQL syntax, validation and variable-coercion errors (and the query-limit
  errors raised before execution).  They describe the client's own document, so
  their message is kept; with introspection off the "Did you mean ...?"
  suggestions are removed because they would hand out the schema piecemeal.
* :class:`ClientFacingError` raised anywhere (resolvers, loaders, extensions):
  errors we raise on purpose, whose message and ``code`` were written for clients.
* Everything else is a bug or an infrastructure failure.  Its message may carry
  SQL text, file paths or row values, so the client gets ``Internal error`` with
  ``extensions.code = "INTERNAL"`` and an ``errorId``; the same id is logged on
  logger ``landscape_graphql`` together with the real traceback.

The masking runs in ``Schema.process_errors`` (see :class:`MaskingSchema`) rather
than in a ``SchemaExtension``: Strawberry calls ``process_errors`` on every path,
including errors raised by extensions themselves, which skip the rest of the
extensions' ``on_operation`` and so would slip past a masking extension. By the time
:func:`format_errors` makes the response's entries, every error is what a client may see.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.types import ExecutionContext

from .errors import (
    BAD_USER_INPUT_CODE,
    INTERNAL_CODE,
    INTERNAL_MESSAGE,
    PARSE_FAILED_CODE,
    VALIDATION_FAILED_CODE,
    ClientFacingError,
)

__all__ = [
    "INTERNAL_CODE",
    "INTERNAL_MESSAGE",
    "LOGGER_NAME",
    "PARSE_FAILED_CODE",
    "VALIDATION_FAILED_CODE",
    "ErrorMasker",
    "MaskingSchema",
    "client_error_entry",
    "error_entry",
    "format_errors",
    "internal_error_entry",
    "introspection_extensions",
    "is_client_facing",
    "strip_suggestions",
]

LOGGER_NAME = "landscape_graphql"

logger = logging.getLogger(LOGGER_NAME)

# graphql-core writes suggestions as " Did you mean 'a', 'b', or 'c'?" (see
# graphql.pyutils.did_you_mean): at the end of most messages, but mid-message for an unknown
# input-object field ("... unknown field 'x'. Did you mean 'y'? Found: {...}."), in literals
# and variables alike. Names cannot contain '?', so the suggestion ends at the first one.
_SUGGESTION_RE = re.compile(r"\s*Did you mean [^?]*\?")


def strip_suggestions(message: str) -> str:
    return _SUGGESTION_RE.sub("", message)


def is_client_facing(error: BaseException) -> bool:
    """Default predicate: which original exceptions may show their message."""
    # Strawberry raises this for client-supplied argument values it cannot coerce;
    # the message describes the client's input.
    return isinstance(error, ClientFacingError | StrawberryInputCoercionError)


def _rewrite(error: GraphQLError, message: str, extensions: dict[str, Any]) -> None:
    # In place, because Strawberry holds the same objects in several lists
    # (result.errors, execution_context.pre_execution_errors).  Dropping the
    # cause means no later formatter or debug view can reach the exception.
    error.message = message
    error.args = (message,)
    error.extensions = extensions
    error.original_error = None
    error.cause = None
    error.__cause__ = None
    error.__context__ = None


class ErrorMasker:
    """Rewrites a list of GraphQL errors, in place, into what the client may see.

    Idempotent: a rewritten error has no original error any more and keeps its
    message and code if processed again.
    """

    def __init__(
        self,
        *,
        hide_suggestions: bool = False,
        client_facing: Callable[[BaseException], bool] = is_client_facing,
    ) -> None:
        self.hide_suggestions = hide_suggestions
        self.client_facing = client_facing

    def _message(self, message: str) -> str:
        return strip_suggestions(message) if self.hide_suggestions else message

    def mask(self, error: GraphQLError) -> None:
        original = error.original_error
        if original is None:
            # Parse/validation/coercion errors and query limits: about the document.
            extensions = dict(error.extensions or {})
            if "code" not in extensions:
                syntax = isinstance(error, GraphQLSyntaxError)
                extensions["code"] = PARSE_FAILED_CODE if syntax else VALIDATION_FAILED_CODE
            _rewrite(error, self._message(error.message), extensions)
        elif error.path is None and isinstance(original, GraphQLError):
            # Outside execution graphql-core only chains GraphQLErrors for the
            # client's variables ("Variable '$n' has invalid value: ...").
            extensions = {**(error.extensions or {}), "code": BAD_USER_INPUT_CODE}
            _rewrite(error, self._message(error.message), extensions)
        elif self.client_facing(original):
            if isinstance(original, ClientFacingError):
                extensions = original.client_extensions()
            else:
                # graphql-core copies an exception's own `extensions` dict onto the
                # error, so a code set by another error family survives.
                extensions = {"code": BAD_USER_INPUT_CODE, **(error.extensions or {})}
            # error.message rather than str(original): graphql-core prefixes
            # coercion errors with the variable they concern.
            _rewrite(error, self._message(error.message), extensions)
        else:
            error_id = secrets.token_hex(6)
            where = ".".join(str(p) for p in error.path) if error.path else "-"
            logger.error(
                "Internal error %s at path %s: %s",
                error_id,
                where,
                error.message,
                exc_info=(type(original), original, original.__traceback__),
            )
            _rewrite(error, INTERNAL_MESSAGE, {"code": INTERNAL_CODE, "errorId": error_id})

    def __call__(
        self, errors: Iterable[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            self.mask(error)


class MaskingSchema(strawberry.Schema):
    """``strawberry.Schema`` whose errors pass through an :class:`ErrorMasker`.

    Takes Strawberry's arguments plus ``hide_suggestions`` and ``client_facing``.
    It replaces Strawberry's default ``process_errors``, which logged every error
    (validation ones included) with its traceback on ``strawberry.execution``.
    """

    def __init__(
        self,
        *args: Any,
        hide_suggestions: bool = False,
        client_facing: Callable[[BaseException], bool] = is_client_facing,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.error_masker = ErrorMasker(hide_suggestions=hide_suggestions, client_facing=client_facing)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        self.error_masker(errors, execution_context)


def introspection_extensions(enabled: bool) -> list[type[SchemaExtension]]:
    """Extensions to add to the schema for the ``--introspection`` setting.

    Strawberry's ``DisableIntrospection`` rejects ``__schema`` and ``__type`` in
    validation; ``__typename`` stays available because clients need it for unions.
    """
    return [] if enabled else [DisableIntrospection]


# ---------------------------------------------------------------- response entries


def format_errors(errors: Sequence[GraphQLError]) -> list[dict[str, Any]]:
    """The response's entries for errors already masked (by the schema's process_errors)."""
    return [dict(e.formatted) for e in errors]


def error_entry(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """A response's error entry made outside GraphQL execution (the request, the database)."""
    return {"message": message, "extensions": {"code": code, **extensions}}


def client_error_entry(error: ClientFacingError) -> dict[str, Any]:
    return {"message": str(error), "extensions": error.client_extensions()}


def internal_error_entry(where: str) -> dict[str, Any]:
    """The masked entry for the exception being handled, whose traceback goes to the log only."""
    error_id = secrets.token_hex(6)
    logger.exception("Internal error %s %s", error_id, where)
    return error_entry(INTERNAL_MESSAGE, INTERNAL_CODE, errorId=error_id)
