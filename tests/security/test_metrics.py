"""Metrics: valid exposition format, correct numbers, and no identifiers in labels."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape_graphql.metrics import CONTENT_TYPE, Metrics, classify_result

# One sample line: name, optional {label="value",...}, a number.
SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Strictly parse the exposition text; fail on any malformed line."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    parsed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "histogram", "gauge")
            assert name not in declared, f"{name} declared twice"
            declared[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"malformed line: {line!r}"
        name = match["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in declared else name
        assert family in declared, f"{name} has no TYPE line"
        labels = tuple(LABEL.findall(match["labels"] or ""))
        key = (name, labels)
        assert key not in parsed, f"duplicate sample {key}"
        parsed[key] = float(match["value"])
    return parsed


def observe_some(metrics: Metrics) -> None:
    metrics.observe_request("query", "ok", 0.02, 3, 120, [], 2048)
    metrics.observe_request("query", "error", 0.3, 5, 10, ["INTERNAL", "NOT_FOUND"], 512)
    metrics.observe_request("query", "rejected", 0.001, 0, 0, ["QUERY_LIMIT"], 200)
    metrics.observe_request(None, "rejected", 0.001, 0, 0, ["GRAPHQL_PARSE_FAILED"], 100)


def test_requests_are_counted_by_operation_type_and_status() -> None:
    metrics = Metrics()
    observe_some(metrics)
    parsed = samples(metrics.render())
    requests = "landscape_graphql_requests_total"
    assert parsed[(requests, (("operation_type", "query"), ("status", "ok")))] == 1
    assert parsed[(requests, (("operation_type", "query"), ("status", "rejected")))] == 1
    assert parsed[(requests, (("operation_type", "unknown"), ("status", "rejected")))] == 1
    # Every combination exists from the start, so rate() works before the first error.
    assert parsed[(requests, (("operation_type", "mutation"), ("status", "error")))] == 0


def test_latency_histogram_is_cumulative_and_consistent() -> None:
    metrics = Metrics()
    observe_some(metrics)
    parsed = samples(metrics.render())
    name = "landscape_graphql_request_duration_seconds"
    query = ("operation_type", "query")
    assert parsed[(f"{name}_bucket", (query, ("le", "0.005")))] == 1
    assert parsed[(f"{name}_bucket", (query, ("le", "0.025")))] == 2
    assert parsed[(f"{name}_bucket", (query, ("le", "0.25")))] == 2
    assert parsed[(f"{name}_bucket", (query, ("le", "0.5")))] == 3
    assert parsed[(f"{name}_bucket", (query, ("le", "+Inf")))] == 3
    assert parsed[(f"{name}_count", (query,))] == 3
    assert parsed[(f"{name}_sum", (query,))] == pytest.approx(0.321)


def test_sql_statements_rows_errors_and_bytes() -> None:
    metrics = Metrics()
    observe_some(metrics)
    parsed = samples(metrics.render())
    assert parsed[("landscape_graphql_sql_statements_per_request_sum", ())] == 8
    assert parsed[("landscape_graphql_sql_statements_per_request_bucket", (("le", "0"),))] == 2
    assert parsed[("landscape_graphql_sql_rows_per_request_sum", ())] == 130
    assert parsed[("landscape_graphql_sql_rows_per_request_bucket", (("le", "100"),))] == 3
    assert parsed[("landscape_graphql_errors_total", (("code", "INTERNAL"),))] == 1
    assert parsed[("landscape_graphql_errors_total", (("code", "QUERY_LIMIT"),))] == 1
    assert parsed[("landscape_graphql_payload_bytes_total", ())] == 2860


def test_labels_never_carry_run_token_or_user_ids() -> None:
    metrics = Metrics()
    identifiers = ["run-2024-01-17-abc", "tok_5f1e9", "alice@example.com", "NOT_FOUND run-7", "Run 42"]
    metrics.observe_request("query run-2024-01-17-abc", "error", 0.1, 1, 1, identifiers, 10)
    metrics.observe_request("alice@example.com", "ok", 0.1, 1, 1, [], 10)
    text = metrics.render()
    for identifier in [*identifiers, "run-", "tok_", "alice", "42"]:
        assert identifier not in text
    parsed = samples(text)
    assert parsed[("landscape_graphql_errors_total", (("code", "OTHER"),))] == 5
    label_values = {value for (_, labels) in parsed for _, value in labels}
    allowed = {"query", "mutation", "subscription", "unknown", "ok", "error", "rejected", "OTHER"}
    assert {v for v in label_values if not re.fullmatch(r"[0-9.e+]+|\+Inf", v)} <= allowed


def test_error_code_cardinality_is_capped() -> None:
    metrics = Metrics(max_error_codes=3)
    metrics.observe_request("query", "error", 0.1, 0, 0, ["lower-case run-1"], 0)
    metrics.observe_request("query", "error", 0.1, 0, 0, [f"CODE_{i}" for i in range(10)], 0)
    metrics.observe_request("query", "error", 0.1, 0, 0, ["CODE_0"], 0)
    codes = {
        labels[0][1]: n for (name, labels), n in samples(metrics.render()).items() if "errors_total" in name
    }
    assert codes == {"CODE_0": 2, "CODE_1": 1, "CODE_2": 1, "OTHER": 8}


def test_unknown_status_is_a_programming_error_but_bad_numbers_are_clamped() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="status"):
        metrics.observe_request("query", "timeout", 0.1, 0, 0, [], 0)
    metrics.observe_request("query", "ok", -1.0, -3, -4, [], -5)
    parsed = samples(metrics.render())
    assert parsed[("landscape_graphql_payload_bytes_total", ())] == 0
    assert parsed[("landscape_graphql_sql_rows_per_request_sum", ())] == 0


def test_concurrent_observations_are_all_counted() -> None:
    metrics = Metrics()

    def worker() -> None:
        for _ in range(2000):
            metrics.observe_request("query", "ok", 0.01, 1, 2, ["NOT_FOUND"], 3)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parsed = samples(metrics.render())
    assert (
        parsed[("landscape_graphql_requests_total", (("operation_type", "query"), ("status", "ok")))]
        == 16_000
    )
    assert parsed[("landscape_graphql_errors_total", (("code", "NOT_FOUND"),))] == 16_000
    assert parsed[("landscape_graphql_payload_bytes_total", ())] == 48_000


def test_prometheus_client_parser_accepts_the_output() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    metrics = Metrics()
    observe_some(metrics)
    families = {f.name: f for f in parser.text_string_to_metric_families(metrics.render())}
    assert families["landscape_graphql_request_duration_seconds"].type == "histogram"
    assert families["landscape_graphql_requests"].type == "counter"
    ok = [
        s
        for s in families["landscape_graphql_requests"].samples
        if s.labels == {"operation_type": "query", "status": "ok"}
    ]
    assert ok[0].value == 1


async def test_metrics_response_has_the_exposition_content_type() -> None:
    metrics = Metrics()
    observe_some(metrics)

    async def endpoint(_request: Request) -> Response:
        return metrics.response()

    app = Starlette(routes=[Route("/metrics", endpoint)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE
    assert "landscape_graphql_requests_total" in response.text


def test_classify_result() -> None:
    assert classify_result({"runs": []}, None) == ("ok", [])
    limit = [{"message": "Query depth 17 ...", "extensions": {"code": "QUERY_LIMIT"}}]
    assert classify_result(None, limit) == ("rejected", ["QUERY_LIMIT"])
    internal = [{"message": "Internal error", "extensions": {"code": "INTERNAL", "errorId": "abc"}}]
    assert classify_result({"runs": None}, internal) == ("error", ["INTERNAL"])
    assert classify_result(None, [{"message": "x"}]) == ("error", ["OTHER"])
