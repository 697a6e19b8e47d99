"""Stored JSON text, parsed for clients; unparsable audit JSON is an integrity error."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import AuditIntegrityError


def parse_json(text: str | None, record: str, column: str) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise AuditIntegrityError(record, f"{column} must hold valid JSON") from None
