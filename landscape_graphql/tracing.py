"""Optional OpenTelemetry tracing: a span per GraphQL request and one per SQL statement under it.

An audit trail's identifiers are themselves sensitive (which rows an auditor looked at), so by
default a span says what kind of work was done and what it cost, never what was asked:
the operation's type and name, the outcome (error codes, SQL statements, rows read), and for
each statement the backend and rows. Query text and variables are recorded only with
`record_queries` (`--otel-record-queries`); SQL text never is, its values being bound anyway.

OpenTelemetry is imported only when tracing is switched on (`pip install 'landscape-graphql[otel]'`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

SERVICE_NAME = "landscape-graphql"


class TracingUnavailable(RuntimeError):
    """Tracing was asked for but the OpenTelemetry packages are not installed."""


@dataclass(frozen=True)
class Tracing:
    tracer: Any  # an opentelemetry.trace.Tracer
    record_queries: bool = False

    @classmethod
    def from_provider(cls, provider: Any, *, record_queries: bool = False) -> Tracing:
        return cls(provider.get_tracer("landscape_graphql"), record_queries)

    @contextlib.contextmanager
    def request(self, operation_type: str | None, operation_name: str | None,
                query: str, variables: Mapping[str, Any] | None) -> Iterator[RequestSpan]:
        from opentelemetry.trace import SpanKind

        name = " ".join(p for p in (operation_type or "graphql", operation_name) if p)
        attributes: dict[str, Any] = {"graphql.operation.type": operation_type or "unknown"}
        if operation_name:
            attributes["graphql.operation.name"] = operation_name
        if self.record_queries:
            attributes["graphql.document"] = query
            if variables:
                attributes["graphql.variables"] = orjson.dumps(variables).decode()
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes) as span:
            yield RequestSpan(span)

    @contextlib.contextmanager
    def statement(self, backend: str) -> Iterator[Any]:
        from opentelemetry.trace import SpanKind

        # "SELECT" is all a span name may say: the API sends nothing else.
        with self.tracer.start_as_current_span(
                "SELECT", kind=SpanKind.CLIENT,
                attributes={"db.system.name": _DB_SYSTEMS.get(backend, backend),
                            "db.operation.name": "SELECT"}) as span:
            yield span


_DB_SYSTEMS = {"sqlite": "sqlite", "sqlcipher": "sqlite", "postgresql": "postgresql"}


@dataclass
class RequestSpan:
    span: Any

    def finish(self, cost: Mapping[str, Any], error_codes: Sequence[str]) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("landscape.sql_statements", int(cost["sqlStatements"]))
        self.span.set_attribute("landscape.rows_read", int(cost["rowsRead"]))
        if error_codes:
            self.span.set_attribute("landscape.error_codes", sorted(set(error_codes)))
            # Codes, not messages: a message may quote an argument.
            self.span.set_status(Status(StatusCode.ERROR, ",".join(sorted(set(error_codes)))))


def otlp_tracing(*, record_queries: bool) -> tuple[Tracing, Any]:
    """Tracing exported over OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_* variables.

    Returns the Tracing and its provider, to be shut down (flushing its spans) at exit."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            "--otel needs the OpenTelemetry packages: pip install 'landscape-graphql[otel]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing.from_provider(provider, record_queries=record_queries), provider
