"""Response entries for GraphQL errors.

Masking happens in the schema (`error_masking.MaskingSchema.process_errors`) before a result is
returned, so by here every error is already what a client may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError


def format_errors(errors: Sequence[GraphQLError]) -> list[dict[str, Any]]:
    return [dict(e.formatted) for e in errors]
