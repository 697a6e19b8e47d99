"""The API over real HTTP: uvicorn on 127.0.0.1, a fixture database, httpx as the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from landscape_graphql.app import AppConfig, create_app
from tests.conftest import truth
from tests.live_server import serve

FC29 = truth(29, "fork-coalesce")["runs"][0]


@pytest.fixture(scope="module")
def base_url(fixture_copies: Path) -> Iterator[str]:
    app = create_app(AppConfig(database=str(fixture_copies / "epoch29" / "fork-coalesce.db")))
    with serve(app) as url:
        yield url


def test_query_over_http_reports_its_cost(base_url: str) -> None:
    token_id = FC29["cases"]["coalesced_multi_parent"]["token_id"]
    response = httpx.post(f"{base_url}/graphql", json={
        "query": "query ($t: String!) { token(tokenId: $t) { tokenId parents { tokenId } outcome { result path } } }",
        "variables": {"t": token_id}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert "errors" not in body
    assert body["data"]["token"]["outcome"] == {"result": "SUCCESS", "path": "GATE_ROUTED"}
    assert len(body["data"]["token"]["parents"]) == 3
    cost = body["extensions"]["landscape"]
    assert cost["sqlStatements"] == 3
    assert cost["rowsRead"] == 1 + 3 + 1
    assert cost["milliseconds"] > 0


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "BAD_REQUEST"),
    ({"content": b"query=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ({"json": [{"query": "{ landscape { epoch } }"}]}, 400, "BAD_REQUEST"),
    ({"json": {"query": 5}}, 400, "BAD_REQUEST"),
    ({"json": {"query": "{ landscape { epoch } }", "variables": [1]}}, 400, "BAD_REQUEST"),
    ({"content": b'{"query": "' + b"a" * 1_100_000 + b'"}', "headers": {"content-type": "application/json"}},
     413, "QUERY_LIMIT"),
])
def test_malformed_requests_get_clear_statuses(base_url: str, kwargs: dict[str, object], status: int,
                                               code: str) -> None:
    response = httpx.post(f"{base_url}/graphql", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_an_operation_name_the_document_lacks_is_a_graphql_error(base_url: str) -> None:
    response = httpx.post(f"{base_url}/graphql", json={"query": "query A { landscape { epoch } }",
                                                         "operationName": "B"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "'B'" in body["errors"][0]["message"]


def test_get_queries_are_off(base_url: str) -> None:
    response = httpx.get(f"{base_url}/graphql", params={"query": "{ landscape { epoch } }"})
    assert response.status_code == 405


def test_syntax_errors_are_graphql_errors_without_internals(base_url: str) -> None:
    body = httpx.post(f"{base_url}/graphql", json={"query": "{ token(tokenId: ) }"}).json()
    assert body["data"] is None
    assert "Syntax Error" in body["errors"][0]["message"]
    assert "Traceback" not in str(body)


def test_health_probes(base_url: str) -> None:
    assert httpx.get(f"{base_url}/livez").json() == {"status": "live"}
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "epoch": 29, "backend": "sqlite"}
