"""Turning GraphQL errors into response entries a client may see.

Our own errors (`LandscapeError`) and GraphQL's (syntax, validation, coercion) keep their
messages; anything else is a bug or a fault whose text may carry SQL, paths or data, so the
client gets "Internal error" with an id that is also in the server log, next to the traceback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError

from .db.errors import translate_db_error
from .errors import LandscapeError

logger = logging.getLogger("landscape_graphql")


def format_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        formatted.setdefault("extensions", {})
        formatted["extensions"].setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        return formatted
    if not isinstance(original, LandscapeError):
        translated = translate_db_error(original)
        if isinstance(translated, LandscapeError):
            original = translated
    if isinstance(original, LandscapeError):
        formatted["message"] = original.message
        formatted["extensions"] = dict(original.extensions)
        return formatted
    error_id = secrets.token_hex(6)
    logger.error("internal error %s at %s", error_id, error.path, exc_info=original)
    formatted["message"] = "Internal error"
    formatted["extensions"] = {"code": "INTERNAL", "errorId": error_id}
    return formatted


def format_errors(errors: Sequence[GraphQLError]) -> list[dict[str, Any]]:
    return [format_error(e) for e in errors]
