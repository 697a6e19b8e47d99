"""Stored JSON text, parsed for clients; unparsable audit JSON is an integrity error."""

from __future__ import annotations

from typing import cast

import orjson
from strawberry.scalars import JSON

from ..errors import AuditIntegrityError


def parse_json(text: str | None, record: str, column: str) -> JSON | None:
    if text is None:
        return cast(JSON, None)
    try:
        return cast(JSON, orjson.loads(text))
    except orjson.JSONDecodeError:
        raise AuditIntegrityError(record, f"{column} must hold valid JSON") from None
