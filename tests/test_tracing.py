"""OpenTelemetry tracing: what a span says, what it never says, and the CLI's OTLP export.

The in-process tests read spans from the SDK's in-memory exporter; the CLI test runs
`landscape-graphql serve --otel` against a small OTLP/HTTP collector on 127.0.0.1 and decodes
what arrives, so the whole path (flag, exporter, flush at shutdown) is real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.tracing import Tracing
from tests.conftest import truth
from tests.live_server import free_port, serve

FC29 = truth(29, "fork-coalesce")["runs"][0]
TOKEN = FC29["cases"]["coalesced_multi_parent"]["token_id"]
QUERY = ("query Lineage($t: String!) { token(tokenId: $t) { tokenId parents { tokenId } "
         "outcome { result path } } }")


def _everything_recorded(span: Any) -> str:
    return repr((span.name, dict(span.attributes or {}), span.status.description,
                 [(e.name, dict(e.attributes or {})) for e in span.events]))


@pytest.fixture()
def traced(fixture_copies: Path) -> Iterator[tuple[InMemorySpanExporter, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def start(record_queries: bool = False) -> Any:
        app = create_app(AppConfig(database=str(fixture_copies / "epoch29" / "fork-coalesce.db"),
                                   tracing=Tracing.from_provider(provider, record_queries=record_queries)))
        return serve(app)

    yield exporter, start
    provider.shutdown()


def test_a_request_span_carries_its_operation_and_cost_and_one_child_span_per_statement(traced: Any) -> None:
    exporter, start = traced
    with start() as url:
        body = httpx.post(f"{url}/graphql", json={"query": QUERY, "variables": {"t": TOKEN}}).json()
    assert "errors" not in body
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER]
    statements = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert request.name == "query Lineage"
    assert request.attributes["graphql.operation.type"] == "query"
    assert request.attributes["graphql.operation.name"] == "Lineage"
    assert request.attributes["landscape.sql_statements"] == body["extensions"]["landscape"]["sqlStatements"] == 3
    assert request.attributes["landscape.rows_read"] == body["extensions"]["landscape"]["rowsRead"]
    assert request.status.status_code == StatusCode.UNSET
    assert len(statements) == 3
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id for s in statements)
    assert {s.attributes["db.system.name"] for s in statements} == {"sqlite"}
    assert sum(s.attributes["db.response.returned_rows"] for s in statements) == request.attributes["landscape.rows_read"]


def test_spans_never_hold_argument_values_or_query_text_unless_asked(traced: Any) -> None:
    exporter, start = traced
    with start() as url:
        httpx.post(f"{url}/graphql", json={"query": QUERY, "variables": {"t": TOKEN}})
        # An argument written into the query itself, and an error quoting it.
        httpx.post(f"{url}/graphql", json={"query": '{ run(runId: "secret-run-id") { tokens(first: 100000) '
                                                    "{ totalCount } } }"})
    spans = exporter.get_finished_spans()
    recorded = " ".join(_everything_recorded(s) for s in spans)
    assert len([s for s in spans if s.kind == SpanKind.SERVER]) == 2
    for secret in (TOKEN, "secret-run-id", "tokenId parents", "100000"):
        assert secret not in recorded
    failed = [s for s in spans if s.kind == SpanKind.SERVER and s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["landscape.error_codes"] == ("QUERY_LIMIT",)


def test_recording_queries_is_an_explicit_choice(traced: Any) -> None:
    exporter, start = traced
    with start(record_queries=True) as url:
        httpx.post(f"{url}/graphql", json={"query": QUERY, "variables": {"t": TOKEN}})
    (request,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.attributes["graphql.document"] == QUERY
    assert TOKEN in request.attributes["graphql.variables"]


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        self.received.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_otel_exports_spans_over_otlp_and_flushes_them_at_shutdown(fixture_copies: Path,
                                                                              workers: str) -> None:
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    _Collector.received = []
    port = free_port()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "60000"}  # nothing leaves before shutdown flushes it
    server = subprocess.Popen(
        [sys.executable, "-m", "landscape_graphql.cli", "serve", "--db",
         str(fixture_copies / "epoch29" / "fork-coalesce.db"), "--port", str(port), "--otel",
         "--workers", workers],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        body = httpx.post(f"http://127.0.0.1:{port}/graphql",
                          json={"query": QUERY, "variables": {"t": TOKEN}}).json()
        assert "errors" not in body
        assert _Collector.received == []
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
        collector.shutdown()
    paths = {path for path, _ in _Collector.received}
    assert paths == {"/v1/traces"}
    spans = []
    for _, payload in _Collector.received:
        request = ExportTraceServiceRequest.FromString(payload)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "landscape-graphql"
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert [s.name for s in spans].count("query Lineage") == 1
    assert [s.name for s in spans].count("SELECT") == 3
    assert TOKEN.encode() not in b"".join(p for _, p in _Collector.received)


def test_record_queries_without_otel_is_refused(fixture_copies: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "landscape_graphql.cli", "serve", "--db",
                             str(fixture_copies / "epoch29" / "fork-coalesce.db"), "--otel-record-queries"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--otel-record-queries needs --otel" in result.stderr
