"""Prometheus metrics for ``/metrics``, in the text exposition format 0.0.4.

Written out rather than taken from prometheus-client: six fixed series do not
earn a dependency (nor does its multi-process mode: _shared.py shares the same numbers), and owning the label sets is what guarantees the rule that
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

from .errors import (
    BAD_USER_INPUT_CODE,
    PARSE_FAILED_CODE,
    QUERY_LIMIT_CODE,
    UNAUTHENTICATED_CODE,
    VALIDATION_FAILED_CODE,
)

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
    {QUERY_LIMIT_CODE, PARSE_FAILED_CODE, VALIDATION_FAILED_CODE, BAD_USER_INPUT_CODE, UNAUTHENTICATED_CODE}
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


class _Layout:
    """Where each number lives in a flat array of float64 slots.

    A flat array (not dicts) so that a worker of a multi-process server can keep its numbers in
    a shared memory-mapped file that any worker reads to report the whole server (_shared.py).
    Error codes take slots in first-come order; their names live beside the numbers.
    """

    def __init__(self, max_error_codes: int) -> None:
        slot = 0

        def take(n: int) -> int:
            nonlocal slot
            first, slot = slot, slot + n
            return first

        self.requests = take(len(OPERATION_TYPES) * len(STATUSES))
        self.durations = {op: take(len(DURATION_BUCKETS) + 2) for op in OPERATION_TYPES}
        self.statements = take(len(STATEMENT_BUCKETS) + 2)
        self.rows = take(len(ROW_BUCKETS) + 2)
        self.payload_bytes = take(1)
        self.codes = max_error_codes + 1  # + OTHER
        self.errors = take(self.codes)
        self.slots = slot
        self.number_bytes = 8 * slot
        self.size = self.number_bytes + self.codes * CODE_BYTES

    def request(self, op: str, status: str) -> int:
        return self.requests + OPERATION_TYPES.index(op) * len(STATUSES) + STATUSES.index(status)


CODE_BYTES: Final = 48  # a code's name, NUL-padded (codes are at most 48 characters)


def _observe(values: Any, first: int, bounds: Sequence[float], value: float) -> None:
    """A histogram at values[first:]: one count per bucket (made cumulative on render), sum, count."""
    for i, bound in enumerate(bounds):
        if value <= bound:
            values[first + i] += 1
            break
    values[first + len(bounds)] += value
    values[first + len(bounds) + 1] += 1


def _histogram_lines(name: str, labels: Mapping[str, str], bounds: Sequence[float],
                     numbers: Sequence[float]) -> Iterable[str]:
    running = 0.0
    for i, bound in enumerate(bounds):
        running += numbers[i]
        yield f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} {_number(running)}"
    count = numbers[len(bounds) + 1]
    yield f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {_number(count)}"
    yield f"{name}_sum{_labels(labels)} {_number(numbers[len(bounds)])}"
    yield f"{name}_count{_labels(labels)} {_number(count)}"


class Slab:
    """One process's numbers: a buffer of float64 slots and the error codes' names."""

    def __init__(self, layout: _Layout, buffer: Any = None) -> None:
        self.layout = layout
        self.buffer = buffer if buffer is not None else bytearray(layout.size)
        self.values = memoryview(self.buffer)[: layout.number_bytes].cast("d")
        self._names = memoryview(self.buffer)[layout.number_bytes : layout.size]
        self.codes: dict[str, int] = {}
        for i in range(layout.codes):  # a file being reopened already names some
            name = self.code_name(i)
            if name:
                self.codes[name] = i

    def code_name(self, i: int) -> str:
        raw = bytes(self._names[i * CODE_BYTES : (i + 1) * CODE_BYTES])
        return raw.rstrip(b"\0").decode("ascii", "replace")

    def code_slot(self, code: str) -> int:
        """The code's slot, named on first use; OTHER once the distinct codes reach the cap."""
        slot = self.codes.get(code)
        if slot is not None:
            return slot
        if code != OTHER_CODE and sum(1 for c in self.codes if c != OTHER_CODE) >= self.layout.codes - 1:
            return self.code_slot(OTHER_CODE)
        slot = len(self.codes)
        encoded = code.encode("ascii")[:CODE_BYTES].ljust(CODE_BYTES, b"\0")
        self._names[slot * CODE_BYTES : (slot + 1) * CODE_BYTES] = encoded
        self.codes[code] = slot
        return slot


class Metrics:
    """Request metrics; safe to call from any thread or task.

    Alone, a process reports its own numbers. In a multi-process server, ``shared`` (a
    ``SharedSlabs`` from _shared.py) keeps this process's numbers in a file every worker can
    read, and ``render`` sums all of them: ``/metrics`` reports the whole server whichever
    worker answers.
    """

    def __init__(self, prefix: str = "landscape_graphql", *, max_error_codes: int = 32,
                 shared: Any = None) -> None:
        self.prefix = prefix
        self.max_error_codes = max_error_codes
        self._lock = threading.Lock()
        self._layout = _Layout(max_error_codes)
        self._shared = shared
        self._slab = Slab(self._layout, None if shared is None else shared.own(self._layout.size))

    def _code_label(self, code: str) -> str:
        return code if _CODE_RE.fullmatch(code) else OTHER_CODE

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
        layout, slab = self._layout, self._slab
        values = slab.values
        with self._lock:
            values[layout.request(op, status)] += 1
            _observe(values, layout.durations[op], DURATION_BUCKETS, seconds)
            _observe(values, layout.statements, STATEMENT_BUCKETS, sql_statements)
            _observe(values, layout.rows, ROW_BUCKETS, rows)
            for code in error_codes:
                values[layout.errors + slab.code_slot(self._code_label(str(code)))] += 1
            values[layout.payload_bytes] += max(payload_bytes, 0)

    def _totals(self) -> tuple[list[float], dict[str, float]]:
        """Every slot summed over the slabs (this process's alone, or every worker's)."""
        layout = self._layout
        slabs = [self._slab] if self._shared is None else [
            Slab(layout, buffer) for buffer in self._shared.all(layout.size)]
        totals = [0.0] * layout.slots
        errors: dict[str, float] = {}
        for slab in slabs:
            values = slab.values
            for i in range(layout.slots):
                totals[i] += values[i]
            for code, slot in slab.codes.items():
                errors[code] = errors.get(code, 0.0) + values[layout.errors + slot]
        return totals, errors

    def render(self) -> str:
        p = self.prefix
        layout = self._layout
        with self._lock:
            totals, errors = self._totals()

        def histogram(first: int, bounds: Sequence[float]) -> list[float]:
            return totals[first : first + len(bounds) + 2]

        lines = [
            f"# HELP {p}_requests_total GraphQL requests by operation type and outcome.",
            f"# TYPE {p}_requests_total counter",
            *(
                f"{p}_requests_total{_labels({'operation_type': op, 'status': status})} "
                f"{_number(totals[layout.request(op, status)])}"
                for op in OPERATION_TYPES for status in STATUSES
            ),
            f"# HELP {p}_request_duration_seconds Time from request to response.",
            f"# TYPE {p}_request_duration_seconds histogram",
            *(
                line
                for op in OPERATION_TYPES
                for line in _histogram_lines(f"{p}_request_duration_seconds", {"operation_type": op},
                                             DURATION_BUCKETS, histogram(layout.durations[op], DURATION_BUCKETS))
            ),
            f"# HELP {p}_sql_statements_per_request SQL statements executed per request.",
            f"# TYPE {p}_sql_statements_per_request histogram",
            *_histogram_lines(f"{p}_sql_statements_per_request", {}, STATEMENT_BUCKETS,
                              histogram(layout.statements, STATEMENT_BUCKETS)),
            f"# HELP {p}_sql_rows_per_request Rows read from the database per request.",
            f"# TYPE {p}_sql_rows_per_request histogram",
            *_histogram_lines(f"{p}_sql_rows_per_request", {}, ROW_BUCKETS, histogram(layout.rows, ROW_BUCKETS)),
            f"# HELP {p}_errors_total GraphQL errors returned, by extensions.code.",
            f"# TYPE {p}_errors_total counter",
            *(f"{p}_errors_total{_labels({'code': code})} {_number(n)}" for code, n in sorted(errors.items())),
            f"# HELP {p}_payload_bytes_total Bytes of payloads read (and verified) from the payload "
            "store for GraphQL responses; not the size of the responses themselves.",
            f"# TYPE {p}_payload_bytes_total counter",
            f"{p}_payload_bytes_total {_number(totals[layout.payload_bytes])}",
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
