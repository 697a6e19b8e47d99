"""Prometheus metrics for ``/metrics``, in the text exposition format 0.0.4.

Written out rather than taken from prometheus-client: six fixed series do not
earn a dependency, and owning the label sets is what guarantees the rule that
matters here: no label ever carries a run id, token id or user id.  Every label
value comes from a closed set (operation type, status) or is an error code that
must look like one (``NOT_FOUND``), with a cap on how many distinct codes are
kept; anything else is counted as ``OTHER``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from starlette.responses import Response

__all__ = [
    "CONTENT_TYPE",
    "OPERATION_TYPES",
    "REJECTED_CODES",
    "STATUSES",
    "Metrics",
    "classify_result",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPERATION_TYPES: Final = ("query", "mutation", "subscription", "unknown")
STATUSES: Final = ("ok", "error", "rejected")
# Errors that mean the request never reached execution.
REJECTED_CODES: Final = frozenset(
    {"QUERY_LIMIT", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "UNAUTHENTICATED"}
)

DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATEMENT_BUCKETS: Final = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
ROW_BUCKETS: Final = (0.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)

_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,47}$")
OTHER_CODE: Final = "OTHER"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs.items()) + "}"


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * len(self.bounds)  # per bucket, made cumulative on render
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: Mapping[str, str]) -> Iterable[str]:
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            yield f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} {running}"
        yield f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {self.count}"
        yield f"{name}_sum{_labels(labels)} {_number(self.total)}"
        yield f"{name}_count{_labels(labels)} {self.count}"


class Metrics:
    """Process-wide request metrics; safe to call from any thread or task."""

    def __init__(self, prefix: str = "landscape_graphql", *, max_error_codes: int = 32) -> None:
        self.prefix = prefix
        self.max_error_codes = max_error_codes
        self._lock = threading.Lock()
        self._requests = {(op, status): 0 for op in OPERATION_TYPES for status in STATUSES}
        self._durations = {op: _Histogram(DURATION_BUCKETS) for op in OPERATION_TYPES}
        self._statements = _Histogram(STATEMENT_BUCKETS)
        self._rows = _Histogram(ROW_BUCKETS)
        self._errors: dict[str, int] = {}
        self._payload_bytes = 0

    def _code_label(self, code: str) -> str:
        # Called with the lock held.  The cap bounds cardinality even if a
        # resolver starts minting codes from data.
        if not _CODE_RE.fullmatch(code):
            return OTHER_CODE
        distinct = len(self._errors) - (OTHER_CODE in self._errors)
        if code not in self._errors and distinct >= self.max_error_codes:
            return OTHER_CODE
        return code

    def observe_request(
        self,
        op_type: str | None,
        status: str,
        seconds: float,
        sql_statements: int,
        rows: int,
        error_codes: Iterable[str],
        payload_bytes: int,
    ) -> None:
        """Record one finished request (one call per HTTP request)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        op = op_type if op_type in OPERATION_TYPES else "unknown"
        # Clamped rather than refused: a metrics glitch must never fail a request.
        seconds, sql_statements, rows = max(seconds, 0.0), max(sql_statements, 0), max(rows, 0)
        with self._lock:
            self._requests[(op, status)] += 1
            self._durations[op].observe(seconds)
            self._statements.observe(sql_statements)
            self._rows.observe(rows)
            for code in error_codes:
                label = self._code_label(str(code))
                self._errors[label] = self._errors.get(label, 0) + 1
            self._payload_bytes += max(payload_bytes, 0)

    def render(self) -> str:
        p = self.prefix
        with self._lock:
            lines = [
                f"# HELP {p}_requests_total GraphQL requests by operation type and outcome.",
                f"# TYPE {p}_requests_total counter",
                *(
                    f"{p}_requests_total{_labels({'operation_type': op, 'status': status})} {n}"
                    for (op, status), n in self._requests.items()
                ),
                f"# HELP {p}_request_duration_seconds Time from request to response.",
                f"# TYPE {p}_request_duration_seconds histogram",
                *(
                    line
                    for op, histogram in self._durations.items()
                    for line in histogram.lines(f"{p}_request_duration_seconds", {"operation_type": op})
                ),
                f"# HELP {p}_sql_statements_per_request SQL statements executed per request.",
                f"# TYPE {p}_sql_statements_per_request histogram",
                *self._statements.lines(f"{p}_sql_statements_per_request", {}),
                f"# HELP {p}_sql_rows_per_request Rows read from the database per request.",
                f"# TYPE {p}_sql_rows_per_request histogram",
                *self._rows.lines(f"{p}_sql_rows_per_request", {}),
                f"# HELP {p}_errors_total GraphQL errors returned, by extensions.code.",
                f"# TYPE {p}_errors_total counter",
                *(
                    f"{p}_errors_total{_labels({'code': code})} {n}"
                    for code, n in sorted(self._errors.items())
                ),
                f"# HELP {p}_response_bytes_total Response body bytes served.",
                f"# TYPE {p}_response_bytes_total counter",
                f"{p}_response_bytes_total {self._payload_bytes}",
            ]
        return "\n".join(lines) + "\n"

    def response(self) -> Response:
        """The ``/metrics`` response, for a Starlette route."""
        return Response(self.render(), media_type=CONTENT_TYPE)


def classify_result(data: Any, errors: Sequence[Mapping[str, Any]] | None) -> tuple[str, list[str]]:
    """``(status, error codes)`` for a formatted GraphQL response.

    ``rejected``: refused before execution (no data, only client/limit errors);
    ``error``: any other error; ``ok``: none.
    """
    if not errors:
        return "ok", []
    codes = [str((e.get("extensions") or {}).get("code") or OTHER_CODE) for e in errors]
    if data is None and all(code in REJECTED_CODES for code in codes):
        return "rejected", codes
    return "error", codes
