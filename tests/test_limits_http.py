"""Query limits and discovery switches through the real app and schema, over real HTTP.

(tests/security/ proves each limit rule on a small schema; this proves they are wired in, run
before any SQL, and report the node estimate on every response.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.settings import Settings
from tests.live_server import serve


@pytest.fixture(scope="module")
def urls(fixture_copies: Path) -> Iterator[dict[str, str]]:
    db = str(fixture_copies / "epoch2" / "fork-coalesce.db")
    open_app = create_app(AppConfig(database=db))
    closed_app = create_app(AppConfig(database=db, settings=Settings(introspection=False), graphiql=False))
    with serve(open_app) as open_url, serve(closed_app) as closed_url:
        yield {"open": open_url, "closed": closed_url}


def _post(url: str, query: str) -> dict[str, object]:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _post_vars(url: str, query: str, variables: dict[str, object] | None = None,
               operation_name: str | None = None) -> dict[str, object]:
    payload: dict[str, object] = {"query": query, "variables": variables or {}}
    if operation_name is not None:
        payload["operationName"] = operation_name
    response = httpx.post(f"{url}/graphql", json=payload, timeout=30)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _limit(body: dict[str, object]) -> dict[str, object]:
    (error,) = body["errors"]  # type: ignore[misc]
    assert error["extensions"]["code"] == "QUERY_LIMIT", error
    assert body["data"] is None
    assert body["extensions"]["landscape"]["sqlStatements"] == 0  # type: ignore[index]
    return error["extensions"]  # type: ignore[no-any-return]


def test_depth(urls: dict[str, str]) -> None:
    nested = "{ runs { nodes { tokens { nodes { " + "parents { " * 14 + "tokenId" + " }" * 14 + " } } } } }"
    ext = _limit(_post(urls["open"], nested))
    assert ext["limit"] == "depth" and ext["maximum"] == 15 and ext["found"] > 15


def test_aliases(urls: dict[str, str]) -> None:
    query = "{ landscape { " + " ".join(f"a{i}: epoch" for i in range(31)) + " } }"
    ext = _limit(_post(urls["open"], query))
    assert ext["limit"] == "aliases" and ext["found"] == 31 and ext["maximum"] == 30


def test_root_fields(urls: dict[str, str]) -> None:
    query = "{ " + " ".join(f"a{i}: landscape {{ epoch }}" for i in range(21)) + " }"
    body = _post(urls["open"], query)
    limits = {e["extensions"]["limit"] for e in body["errors"]}  # type: ignore[union-attr]
    assert limits == {"rootFields"} and body["data"] is None


def test_node_budget_and_its_estimate(urls: dict[str, str]) -> None:
    ext = _limit(_post(urls["open"], "{ runs(first: 500) { nodes { tokens(first: 500) { nodes { "
                                     "descendants(maxDepth: 10) { tokens { tokenId } } } } } } }"))
    assert ext["limit"] == "nodes" and ext["maximum"] == 500_000
    ok = _post(urls["open"], "{ runs(first: 2) { nodes { tokens(first: 10) { nodes { tokenId } } } } }")
    assert ok["extensions"]["landscape"]["estimatedNodes"] == 2 + 2 * 10  # type: ignore[index]


def test_page_size(urls: dict[str, str]) -> None:
    ext = _limit(_post(urls["open"], "{ runs(first: 501) { totalCount } }"))
    assert ext["limit"] == "pageSize" and ext["found"] == 501


def test_introspection_and_suggestions_can_be_switched_off(urls: dict[str, str]) -> None:
    schema_query = "{ __schema { queryType { name } } }"
    assert "errors" not in _post(urls["open"], schema_query)
    closed = _post(urls["closed"], schema_query)
    assert closed["data"] is None and closed["errors"]
    typo = "{ tokne(tokenId: \"x\") { tokenId } }"
    assert "Did you mean" in str(_post(urls["open"], typo)["errors"])
    assert "Did you mean" not in str(_post(urls["closed"], typo)["errors"])
    page = httpx.get(f"{urls['closed']}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 405 and "<html" not in page.text.lower()


def test_no_suggestions_for_input_object_fields_when_introspection_is_off(urls: dict[str, str]) -> None:
    literal = '{ run(runId: "x") { tokens(filter: {sinkNam: "a"}) { totalCount } } }'
    variable = "query ($f: TokenFilter) { run(runId: \"x\") { tokens(filter: $f) { totalCount } } }"
    assert "sinkName" in str(_post(urls["open"], literal)["errors"])
    assert "sinkName" in str(_post_vars(urls["open"], variable, {"f": {"sinkNam": "a"}})["errors"])
    for body in (_post(urls["closed"], literal), _post_vars(urls["closed"], variable, {"f": {"sinkNam": "a"}})):
        text = str(body["errors"])
        assert "sinkNam" in text  # the client's own input is still named ...
        assert "sinkName" not in text and "Did you mean" not in text  # ... the schema's field is not


def test_a_run_dag_is_costed_as_the_whole_run_it_reads(urls: dict[str, str]) -> None:
    one = _post(urls["open"], '{ run(runId: "x") { dag { nodes { nodeId } edges { tokenCount } } } }')
    assert one["extensions"]["landscape"]["estimatedNodes"] >= 10_000  # type: ignore[index]
    ext = _limit(_post(urls["open"], "{ runs(first: 50) { nodes { dag { edges { tokenCount } } } } }"))
    assert ext["limit"] == "nodes" and ext["found"] > 500_000


async def test_a_long_document_is_parsed_off_the_event_loop_once(fixture_copies: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from landscape_graphql import limits

    threads: list[int] = []
    real_parse = limits.parse

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.get_ident())
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limits, "parse", recording)
    app = create_app(AppConfig(database=str(fixture_copies / "epoch2" / "fork-coalesce.db")))
    wide = "{ runs { nodes { " + " ".join(f"f{i}: runId" for i in range(25)) + " } } } # " + "x" * 8000
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        body = (await client.post("/graphql", json={"query": wide})).json()
    assert "errors" not in body, body
    assert len(threads) == 1 and threads[0] != threading.get_ident()
