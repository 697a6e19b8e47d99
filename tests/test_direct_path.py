"""The direct request path (`_direct.py`) answers exactly what `schema.execute` answers.

Every request runs through Strawberry's `schema.execute` first (which also parses, validates and
caches the document), then through `DirectPath.execute` with a fresh context; the two results,
serialised as the response's data, errors and extensions, must be byte-identical (an internal
error's random id aside, and errors in path order: concurrent fields fail in the order their
SQL completes). Where the direct path must not be taken — a document never validated, a limit
refused, an unknown operation name — it must decline, leaving the request to Strawberry.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from strawberry.types import ExecutionResult

from landscape_graphql._direct import DirectPath
from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.context import Context
from landscape_graphql.db.engine import Landscape
from landscape_graphql.error_masking import LOGGER_NAME, format_errors
from landscape_graphql.limits import QueryLimits
from landscape_graphql.schema import build_schema
from landscape_graphql.settings import Settings
from tests.conftest import truth
from tests.live_server import serve
from tests.test_cost import NESTED
from tests.test_demo_landscape import EVERYTHING
from tests.test_execution_differential import SAME_TEXT, _walks_sorted
from tests.test_lineage import WALK
from tests.test_truth import EXPLAIN

KEY = (29, "fork-coalesce")


def _body(result: ExecutionResult, backend: str = "sqlite") -> bytes:
    errors = []
    for error in format_errors(result.errors or []):
        extensions = dict(error.get("extensions") or {})
        if "errorId" in extensions:
            extensions["errorId"] = "-"
        errors.append(orjson.dumps({**error, "extensions": extensions}).decode())
    # On PostgreSQL a walk's levels come in plan order (see test_execution_differential.Pair.same).
    data = _walks_sorted(result.data) if backend == "postgresql" else result.data
    return orjson.dumps({"data": data, "errors": sorted(errors), "extensions": result.extensions})


class Both:
    def __init__(self, landscape: Landscape, settings: Settings | None = None) -> None:
        self.landscape = landscape
        self.settings = settings or Settings()
        self.schema = build_schema(self.settings)
        direct = DirectPath.for_schema(self.schema)
        assert direct is not None, "the project's schema must be eligible"
        self.direct = direct

    async def same(self, query: str, variables: dict[str, Any] | None = None,
                   operation_name: str | None = None, *, taken: bool = True, **ctx: Any) -> bytes:
        """Strawberry's answer; the direct path's must be the same bytes, or it must decline."""
        stock = await self.schema.execute(query, variable_values=variables, operation_name=operation_name,
                                          context_value=Context.create(self.landscape, self.settings, **ctx))
        direct = await self.direct.execute(query, variables, Context.create(self.landscape, self.settings, **ctx),
                                           operation_name)
        if not taken:
            assert direct is None, (query, variables)
            return _body(stock, self.landscape.backend)
        assert direct is not None, (query, variables)
        assert _body(direct, self.landscape.backend) == _body(stock, self.landscape.backend), (query, variables)
        return _body(stock, self.landscape.backend)


def _codes(body: bytes) -> list[str]:
    return sorted(orjson.loads(e)["extensions"]["code"] for e in orjson.loads(body)["errors"])


async def test_fixture_queries(landscapes: dict[tuple[int, str], Landscape]) -> None:
    for (epoch, name), landscape in sorted(landscapes.items()):
        both = Both(landscape)
        for run in truth(epoch, name)["runs"]:
            ids = [case["token_id"] for case in run["cases"].values()]
            await both.same(NESTED, {"run": run["run_id"], "ids": [*ids, "no-such-token"]})
            await both.same(EVERYTHING, {"r": run["run_id"], "after": None})
            for token_id in ids[:4]:
                await both.same(EXPLAIN, {"runId": run["run_id"], "tokenId": token_id})
                await both.same(WALK, {"t": token_id, "d": 2})


async def test_variables_change_between_requests(landscapes: dict[tuple[int, str], Landscape]) -> None:
    both = Both(landscapes[KEY])
    token = truth(*KEY)["runs"][0]["cases"]["coalesced_multi_parent"]["token_id"]
    for d, states, n in ((0, True, 1), (2, False, 3), (101, False, 2), (2, True, 500)):
        await both.same(SAME_TEXT, {"t": token, "d": d, "states": states, "n": n})
    # A page over the maximum is refused by the estimate: Strawberry's path reports it.
    await both.same(SAME_TEXT, {"t": token, "d": 2, "states": True, "n": 600}, taken=False)
    # Variables that do not coerce: graphql-core's errors, masked the same way.
    body = await both.same(WALK, {"t": 5, "d": "deep"})
    assert _codes(body) == ["BAD_USER_INPUT", "BAD_USER_INPUT"]


@pytest.mark.parametrize("query", [
    '{ runs(first: -1) { totalCount } }',
    '{ runs(after: "garbage!") { totalCount } }',
    '{ node(id: "not-an-id") { id } }',
    '{ explain(runId: "x") { runId } }',
])
async def test_bad_arguments(landscapes: dict[tuple[int, str], Landscape], query: str) -> None:
    assert _codes(await Both(landscapes[KEY]).same(query)) == ["BAD_ARGUMENT"]


async def test_a_scoped_principal(landscapes: dict[tuple[int, str], Landscape]) -> None:
    both = Both(landscapes[KEY])
    run = truth(*KEY)["runs"][0]
    token = next(iter(run["cases"].values()))["token_id"]
    seen = await both.same(EXPLAIN, {"runId": run["run_id"], "tokenId": token},
                           allowed_runs=frozenset({run["run_id"]}))
    hidden = await both.same(EXPLAIN, {"runId": run["run_id"], "tokenId": token}, allowed_runs=frozenset())
    assert seen != hidden
    await both.same(NESTED, {"run": run["run_id"], "ids": [token]}, allowed_runs=frozenset({"other"}))


async def test_limits_and_refusals_go_to_strawberry(landscapes: dict[tuple[int, str], Landscape]) -> None:
    both = Both(landscapes[KEY], Settings(limits=QueryLimits(max_nodes=100), introspection=False))
    run_id = truth(*KEY)["runs"][0]["run_id"]
    # Valid once, then refused by the node budget with these variables.
    query = "query ($r: String!, $n: Int!) { run(runId: $r) { tokens(first: $n) { nodes { tokenId } } } }"
    await both.same(query, {"r": run_id, "n": 5})
    refused = orjson.loads(await both.same(query, {"r": run_id, "n": 400}, taken=False))
    assert refused["data"] is None and refused["extensions"]["landscape"]["estimatedNodes"] > 100
    # A page over the maximum, a validation error, introspection switched off.
    await both.same(query, {"r": run_id, "n": 10_000}, taken=False)
    await both.same("{ runs { nope } }", taken=False)
    await both.same("{ __schema { types { name } } }", taken=False)
    # Several operations: the named one runs; an unknown or missing name is Strawberry's to refuse.
    two = "query A { runs(first: 1) { totalCount } } query B { runs(first: 2) { totalCount } }"
    await both.same(two, None, "B")
    await both.same(two, None, None, taken=False)
    with pytest.raises(Exception, match="C"):
        await both.same(two, None, "C", taken=False)


async def test_introspection_when_allowed(landscapes: dict[tuple[int, str], Landscape]) -> None:
    await Both(landscapes[KEY]).same("{ __schema { queryType { name } } __typename }")


async def test_an_internal_error_is_masked_and_logged(landscapes: dict[tuple[int, str], Landscape],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # A scope of the wrong type: a bug's TypeError deep in the resolvers, which the client
    # sees only as INTERNAL with an id, and the log sees in full.
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    run = truth(*KEY)["runs"][0]
    token = next(iter(run["cases"].values()))["token_id"]
    body = await Both(landscapes[KEY]).same(EXPLAIN, {"runId": run["run_id"], "tokenId": token}, allowed_runs=42)
    assert "INTERNAL" in _codes(body)
    assert b"TypeError" not in body and b"int" not in body
    assert sum("Internal error" in r.getMessage() for r in caplog.records) >= 2


def _timeless(response: httpx.Response) -> bytes:
    body = response.json()
    landscape = body.get("extensions", {}).get("landscape", {})
    for key in ("milliseconds", "dbMilliseconds"):
        landscape.pop(key, None)
    for error in body.get("errors", []):
        if "errorId" in error.get("extensions", {}):
            error["extensions"]["errorId"] = "-"
    return orjson.dumps(body)


def test_the_server_takes_it_and_answers_the_same(fixture_copies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    execute = DirectPath.execute

    async def counted(self: DirectPath, *args: Any) -> ExecutionResult | None:
        result = await execute(self, *args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(DirectPath, "execute", counted)
    db = str(fixture_copies / "epoch29" / "fork-coalesce.db")
    run = truth(*KEY)["runs"][0]
    token = next(iter(run["cases"].values()))["token_id"]
    requests = [{"query": EXPLAIN, "variables": {"runId": run["run_id"], "tokenId": token}},
                {"query": WALK, "variables": {"t": token, "d": 1}},
                {"query": WALK, "variables": {"t": 5, "d": 1}},
                {"query": '{ runs(first: -1) { totalCount } }'}]
    answers: dict[bool, list[tuple[bytes, str | None]]] = {}
    for direct in (False, True):
        app = create_app(AppConfig(database=db, settings=Settings(direct_path=direct), response_cache_bytes=0))
        with serve(app) as url, httpx.Client() as client:
            answers[direct] = [(_timeless(r), r.headers.get("etag"))
                               for r in (client.post(f"{url}/graphql", json=body) for body in requests * 2)]
    assert answers[True] == answers[False]
    # The first request of each text validates it through Strawberry; later ones run directly.
    assert taken == [False, False, True, False, True, True, True, True]
