"""The errors a client may see, each with a stable `extensions.code`.

Anything raised that is not a `LandscapeError` is a bug or an unexpected fault and reaches the
client only as a masked "Internal error" with an error id; these carry messages written for
the person asking, so they pass through as they are. None of them may include SQL text, a
server path or a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .error_masking import ClientFacingError


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


class WrongKey(LandscapeError):
    """The SQLCipher key does not open the database. Never echoes the key."""

    code = "WRONG_KEY"
