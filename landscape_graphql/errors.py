"""The errors a client may see, each with a stable `extensions.code`, and every code as a constant.

Anything raised that is not a `ClientFacingError` is a bug or an unexpected fault and reaches
the client only as a masked "Internal error" with an error id (`error_masking`); these carry
messages written for the person asking, so they pass through as they are. None of them may
include SQL text, a server path or a secret.

Imports neither Strawberry nor graphql-core: the `db` package raises these and stays free of
both (tests/test_db_imports.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Codes of errors about the request itself, not raised as a LandscapeError subclass (each of
# those declares its own `code` below).
INTERNAL_CODE = "INTERNAL"
BAD_REQUEST_CODE = "BAD_REQUEST"
BAD_USER_INPUT_CODE = "BAD_USER_INPUT"
PARSE_FAILED_CODE = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED_CODE = "GRAPHQL_VALIDATION_FAILED"
QUERY_LIMIT_CODE = "QUERY_LIMIT"
UNSUPPORTED_MEDIA_TYPE_CODE = "UNSUPPORTED_MEDIA_TYPE"
METHOD_NOT_ALLOWED_CODE = "METHOD_NOT_ALLOWED"
UNAUTHENTICATED_CODE = "UNAUTHENTICATED"
AUTH_UNAVAILABLE_CODE = "AUTH_UNAVAILABLE"
PERSISTED_QUERY_REQUIRED_CODE = "PERSISTED_QUERY_REQUIRED"
PERSISTED_QUERY_NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"

INTERNAL_MESSAGE = "Internal error"
TIMEOUT_MESSAGE = "The query took longer than the request timeout and was cancelled"


class ClientFacingError(Exception):
    """An error whose message was written for the client and is safe to show.

    ``code`` becomes ``extensions.code``; ``extensions`` adds further keys
    (``code`` always wins).  Never put SQL, paths or data the principal may not
    read into the message.
    """

    code: str = BAD_REQUEST_CODE

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.extensions: dict[str, Any] = dict(extensions or {})

    def client_extensions(self) -> dict[str, Any]:
        return {**self.extensions, "code": self.code}


class LandscapeError(ClientFacingError):
    code = "LANDSCAPE_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})
        self.message = message


class BadArgument(LandscapeError):
    """A field argument is malformed or out of range."""

    code = "BAD_ARGUMENT"

    def __init__(self, argument: str, why: str) -> None:
        super().__init__(f"Argument '{argument}': {why}", argument=argument)


class RunMismatch(LandscapeError):
    """An id exists, but in another run than the one asked for.

    ELSPETH's explain() silently answers nothing here, which auditors read as "not found".
    """

    code = "RUN_MISMATCH"

    def __init__(self, kind: str, record_id: str, asked_run: str, actual_run: str) -> None:
        super().__init__(
            f"{kind} {record_id} belongs to run {actual_run}, not to run {asked_run}",
            recordId=record_id, askedRunId=asked_run, actualRunId=actual_run,
        )


class AmbiguousLineage(LandscapeError):
    """A row has several candidate tokens; ELSPETH's explain raises the same."""

    code = "AMBIGUOUS_LINEAGE"

    def __init__(self, message: str, candidates: Sequence[str]) -> None:
        super().__init__(message, candidateTokenIds=list(candidates[:5]),
                         candidateCount=len(candidates))


class NotFound(LandscapeError):
    """Raised only where null cannot express absence (e.g. explain of an unknown row)."""

    code = "NOT_FOUND"


class AuditIntegrityError(LandscapeError):
    """The audit data breaks a rule ELSPETH guarantees: reported, never coerced."""

    code = "AUDIT_INTEGRITY"

    def __init__(self, record: str, rule: str, detail: str = "") -> None:
        message = f"Audit integrity violation in {record}: {rule}"
        if detail:
            message += f" ({detail})"
        super().__init__(message, record=record, rule=rule)
        self.record = record
        self.rule = rule


class UnsupportedDatabase(LandscapeError):
    """The database is not a Landscape this version can read."""

    code = "UNSUPPORTED_DATABASE"


class DatabaseUnavailable(LandscapeError):
    code = "DATABASE_UNAVAILABLE"


class DatabaseBusy(LandscapeError):
    code = "DATABASE_BUSY"


class QueryTimeout(LandscapeError):
    code = "TIMEOUT"

    def __init__(self, message: str = TIMEOUT_MESSAGE) -> None:
        super().__init__(message)


class WrongKey(LandscapeError):
    """The SQLCipher key does not open the database. Never echoes the key."""

    code = "WRONG_KEY"
