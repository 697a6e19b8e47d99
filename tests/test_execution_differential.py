"""The fast execution path answers exactly what graphql-core's own path answers.

Every query runs twice against the same Landscape: through `FastExecutor` (the default) and
through Strawberry's stock executor (`Settings(fast_execution=False)`), and the two responses
must be equal byte for byte once serialised (data with its key order, errors with their paths
and codes; the errors in path order, see `_errors`). The queries are the project's fixture queries, queries against
deliberately corrupted copies (integrity errors, nulls propagating through non-null fields),
and a few hundred generated from the schema with Hypothesis. On SQLite the fast path may not
send more SQL than the stock one.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape_graphql.db.engine import Landscape, open_landscape
from landscape_graphql.demo import generate
from landscape_graphql.schema import build_schema
from landscape_graphql.schema.relay import to_global_id
from landscape_graphql.settings import Settings
from tests.conftest import FIXTURES, SQLITE_FIXTURES, Api, payload_dir, truth
from tests.test_cost import NESTED
from tests.test_demo_landscape import EVERYTHING
from tests.test_lineage import WALK
from tests.test_truth import EXPLAIN

FAST = Settings(fast_execution=True)
STOCK = Settings(fast_execution=False)


@dataclass
class Pair:
    fast: Api
    stock: Api

    async def same(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """Run on both paths, assert the responses are identical, return the data."""
        fast = await self.fast.run(query, variables)
        stock = await self.stock.run(query, variables)
        assert _errors(fast.errors) == _errors(stock.errors), (query, variables, fast.errors, stock.errors)
        fast_data, stock_data = fast.data, stock.data
        if self.fast.landscape.backend == "postgresql":
            # db/lineage.py selects a walk's level without ORDER BY; PostgreSQL returns it in an
            # order that depends on the plan (a connection switches to a generic plan after five
            # runs of a statement), so only on SQLite is the order of a walk's lists comparable.
            fast_data, stock_data = _walks_sorted(fast_data), _walks_sorted(stock_data)
        assert orjson.dumps(fast_data) == orjson.dumps(stock_data), (
            query, variables, _first_difference(fast_data, stock_data))
        if self.fast.landscape.backend != "postgresql":
            # Loads of independent branches share a statement when they happen to be queued in
            # the same tick; with PostgreSQL's network round trips that is down to timing.
            assert fast.statements <= stock.statements, (query, variables, fast.statements,
                                                         stock.statements)
        return fast.data

    def close(self) -> None:
        self.fast.counter.close()
        self.stock.counter.close()


_WALKS = {"ancestors", "descendants", "lineage", "lineagePath"}


def _walks_sorted(value: Any, walk: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _walks_sorted(v, walk or k in _WALKS) for k, v in value.items()}
    if isinstance(value, list):
        items = [_walks_sorted(v, walk) for v in value]
        return sorted(items, key=orjson.dumps) if walk else items
    return value


def _first_difference(fast: Any, stock: Any, path: str = "") -> str:
    if isinstance(fast, dict) and isinstance(stock, dict):
        if list(fast) != list(stock):
            return f"{path}: keys {list(fast)} != {list(stock)}"
        for key in fast:
            if fast[key] != stock[key] or orjson.dumps(fast[key]) != orjson.dumps(stock[key]):
                return _first_difference(fast[key], stock[key], f"{path}.{key}")
    if isinstance(fast, list) and isinstance(stock, list) and len(fast) == len(stock):
        for i, (a, b) in enumerate(zip(fast, stock, strict=True)):
            if orjson.dumps(a) != orjson.dumps(b):
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path}: fast {str(fast)[:300]} != stock {str(stock)[:300]}"


def _errors(errors: list[dict[str, Any]]) -> list[bytes]:
    """The errors, each serialised, in path order.

    Errors are listed in the order their fields fail, and concurrent fields fail in the order
    their SQL completes, which the stock path does not fix either (it depends on when each
    statement's connection goes back to the pool). An internal error's id is random.
    """
    normalised = []
    for error in errors:
        extensions = dict(error.get("extensions") or {})
        if "errorId" in extensions:
            extensions["errorId"] = "-"
        normalised.append(orjson.dumps({**error, "extensions": extensions}))
    return sorted(normalised)


def _pair(landscape: Landscape, roots: tuple[Path, ...] = ()) -> Pair:
    return Pair(Api(landscape, FAST, payload_roots=roots), Api(landscape, STOCK, payload_roots=roots))


@pytest.fixture(scope="module")
def pairs(landscapes: dict[tuple[int, str], Landscape]) -> Iterator[dict[tuple[int, str], Pair]]:
    made = {key: _pair(ls, (payload_dir(*key),)) for key, ls in landscapes.items()}
    yield made
    for pair in made.values():
        pair.close()


def test_the_settings_select_the_executor() -> None:
    from landscape_graphql.execution import FastExecutor

    assert build_schema(FAST).execution_context_class is FastExecutor
    assert build_schema(STOCK).execution_context_class is not FastExecutor


# ---------------------------------------------------------------- the fixture queries


def _truth_cases() -> list[Any]:
    cases = []
    for epoch, name in sorted(SQLITE_FIXTURES):
        for run in truth(epoch, name)["runs"]:
            for case in run["cases"].values():
                cases.append((epoch, name, run["run_id"], case["token_id"]))
    return cases


async def test_explain_of_every_truth_case(pairs: dict[tuple[int, str], Pair]) -> None:
    for epoch, name, run_id, token_id in _truth_cases():
        await pairs[(epoch, name)].same(EXPLAIN, {"runId": run_id, "tokenId": token_id})
        for depth in (0, 2):
            await pairs[(epoch, name)].same(WALK, {"t": token_id, "d": depth})


async def test_batched_explain_and_pages_of_every_fixture(pairs: dict[tuple[int, str], Pair]) -> None:
    for (epoch, name), pair in sorted(pairs.items()):
        for run in truth(epoch, name)["runs"]:
            ids = [case["token_id"] for case in run["cases"].values()]
            await pair.same(NESTED, {"run": run["run_id"], "ids": [*ids, "no-such-token"]})
            # One page of every relation; the mixed demo below pages through whole runs.
            await pair.same(EVERYTHING, {"r": run["run_id"], "after": None})


SAME_TEXT = """query ($t: String!, $d: Int!, $states: Boolean!, $n: Int!) { token(tokenId: $t) {
  tokenId nodeStates @include(if: $states) { stateId status }
  ancestors(maxDepth: $d) { tokens { tokenId } truncated }
  row { tokens { tokenId ancestors(maxDepth: $d) { depthReached } } }
  run { tokens(first: $n) { nodes { tokenId } } } } }"""


async def test_one_query_text_with_changing_variables(pairs: dict[tuple[int, str], Pair]) -> None:
    # Plans are shared by requests of the same text; what the variables change must not be.
    pair = pairs[(2, "fork-coalesce")]
    token = truth(2, "fork-coalesce")["runs"][0]["cases"]["coalesced_multi_parent"]["token_id"]
    for d, states, n in ((0, True, 1), (2, False, 3), (1, True, 0), (101, False, 2), (2, True, 600)):
        await pair.same(SAME_TEXT, {"t": token, "d": d, "states": states, "n": n})


@pytest.fixture(scope="module")
async def demo_pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Pair, Any]]:
    out = tmp_path_factory.mktemp("differential") / "demo.db"
    report = generate(out, epoch=29, rows=40, seed=3)
    landscape = await open_landscape(str(out))
    pair = _pair(landscape, (report.payload_dir,))
    yield pair, report
    pair.close()
    await landscape.dispose()


async def test_every_relation_of_every_token_of_a_mixed_demo(demo_pair: tuple[Pair, Any]) -> None:
    pair, report = demo_pair
    for run_id in report.run_ids:
        after = None
        while True:
            data = await pair.same(EVERYTHING, {"r": run_id, "after": after})
            page = data["run"]["tokens"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]


# ---------------------------------------------------------------- corrupted data

ERRORS_QUERY = """
query ($r: String!, $t: String!) {
  run(runId: $r) { tokens(first: 40) { nodes { tokenId branchName
    nodeStates { stateId status contextAfter node { pluginName } }
    parents { tokenId } children { tokenId } outcome { path sinkName }
    descendants(maxDepth: 2) { tokens { tokenId } terminalTokens { tokenId outcome { path } } } } } }
  token(tokenId: $t) { tokenId parents { tokenId } nodeStates { status } outcome { result }
    ancestors(maxDepth: 3) { tokens { tokenId forkGroupId } edges { kind } } }
  explain(runId: $r, tokenId: $t) { token { tokenId } nodeStates { stateId } parentTokens { tokenId }
    outcome { path } validationErrors { errorId } }
}
"""


def _corrupt(db: Path, epoch: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        states = [r[0] for r in conn.execute("SELECT state_id FROM node_states ORDER BY state_id LIMIT 40")]
        # An enum value that does not exist, and JSON that does not parse.
        conn.execute("UPDATE node_states SET status = 'exploded' WHERE state_id = ?", (states[3],))
        conn.execute("UPDATE node_states SET context_after_json = '{not json' WHERE state_id = ?", (states[7],))
        # Two group ids on one token; a parent reference to a token that does not exist.
        tokens = [r[0] for r in conn.execute(
            "SELECT token_id FROM tokens WHERE fork_group_id IS NOT NULL ORDER BY token_id LIMIT 3")]
        conn.execute("UPDATE tokens SET join_group_id = 'j' WHERE token_id = ?", (tokens[0],))
        conn.execute("UPDATE token_parents SET parent_token_id = 'gone' WHERE token_id = ?", (tokens[1],))
        # An outcome that breaks its epoch's rules.
        column = "path" if epoch >= 29 else "outcome"
        conn.execute(f"UPDATE token_outcomes SET {column} = 'nowhere' WHERE token_id IN "
                     "(SELECT token_id FROM tokens ORDER BY token_id LIMIT 2 OFFSET 5)")


@pytest.fixture(scope="module", params=[2, 29])
async def corrupted(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Pair, int]]:
    epoch = request.param
    db = tmp_path_factory.mktemp(f"corrupt{epoch}") / "fork-coalesce.db"
    shutil.copy2(FIXTURES / f"epoch{epoch}" / "fork-coalesce.db", db)
    _corrupt(db, epoch)
    landscape = await open_landscape(str(db))
    pair = _pair(landscape)
    yield pair, epoch
    pair.close()
    await landscape.dispose()


async def test_integrity_errors_null_the_same_fields(corrupted: tuple[Pair, int]) -> None:
    pair, epoch = corrupted
    run_id = truth(epoch, "fork-coalesce")["runs"][0]["run_id"]
    with sqlite3.connect(f"file:{pair.fast.landscape.watch.path}?mode=ro", uri=True) as conn:
        tokens = [r[0] for r in conn.execute("SELECT token_id FROM tokens ORDER BY token_id LIMIT 60")]
        forked = [r[0] for r in conn.execute(
            "SELECT token_id FROM tokens WHERE fork_group_id IS NOT NULL ORDER BY token_id LIMIT 3")]
    errors = 0
    for token_id in [*forked, *tokens[:12]]:
        fast = await pair.fast.run(ERRORS_QUERY, {"r": run_id, "t": token_id})
        errors += len(fast.errors)
        await pair.same(ERRORS_QUERY, {"r": run_id, "t": token_id})
    assert errors > 0, "the corruption must reach the responses"


# ---------------------------------------------------------------- generated queries


@dataclass(frozen=True)
class Ids:
    run_id: str
    tokens: tuple[str, ...]
    rows: tuple[str, ...]
    states: tuple[str, ...]
    calls: tuple[str, ...]
    operations: tuple[str, ...]
    batches: tuple[str, ...]


def _ids(path: Path) -> list[Ids]:
    found = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for (run_id,) in conn.execute("SELECT run_id FROM runs ORDER BY run_id LIMIT 2"):
            def some(sql: str, run: str = run_id) -> tuple[str, ...]:
                return tuple(r[0] for r in conn.execute(sql, (run,)))
            found.append(Ids(
                run_id,
                some("SELECT token_id FROM tokens WHERE run_id = ? ORDER BY token_id LIMIT 12"),
                some("SELECT row_id FROM rows WHERE run_id = ? ORDER BY row_id LIMIT 6"),
                some("SELECT state_id FROM node_states WHERE run_id = ? ORDER BY state_id LIMIT 6"),
                some("SELECT call_id FROM calls WHERE state_id IN (SELECT state_id FROM node_states "
                     "WHERE run_id = ?) ORDER BY call_id LIMIT 4"),
                some("SELECT operation_id FROM operations WHERE run_id = ? ORDER BY operation_id LIMIT 4"),
                some("SELECT batch_id FROM batches WHERE run_id = ? ORDER BY batch_id LIMIT 4"),
            ))
    return found


class QueryBuilder:
    """Random selections over the real schema, with arguments that resolve (mostly)."""

    def __init__(self, schema: GraphQLSchema, draw: Any) -> None:
        self.schema = schema
        self.draw = draw
        self.aliases = 0

    def args(self, field: Any) -> str | None:
        parts = []
        for name, arg in field.args.items():
            if name == "maxDepth":
                parts.append(f"maxDepth: {self.draw(st.sampled_from([0, 1, 2, 4, 101]))}")
            elif name in ("first", "last") and name == self.draw(st.sampled_from(["first", "last", None])):
                parts.append(f"{name}: {self.draw(st.sampled_from([0, 1, 3, 7]))}")
            elif is_non_null_type(arg.type) and arg.default_value is None:
                return None  # a required argument this builder cannot make up
        return "(" + ", ".join(parts) + ")" if parts else ""

    def selection(self, parent: Any, depth: int) -> str:
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            possible = self.schema.get_possible_types(parent)
            chosen = self.draw(st.lists(st.sampled_from(possible), min_size=1, max_size=2, unique=True))
            inner = " ".join(f"... on {t.name} {{ {self.selection(t, depth)} }}" for t in chosen)
            return f"__typename {inner}"
        assert isinstance(parent, GraphQLObjectType)
        names = sorted(parent.fields)
        if depth <= 0:
            names = [n for n in names if is_leaf_type(get_named_type(parent.fields[n].type))]
        picked = self.draw(st.lists(st.sampled_from(names or ["__typename"]), min_size=1, max_size=5,
                                    unique=True)) if names else ["__typename"]
        if self.draw(st.booleans()):
            picked.append("__typename")
        parts = []
        for name in picked:
            if name == "__typename":
                parts.append(name)
                continue
            field = parent.fields[name]
            args = self.args(field)
            if args is None:
                continue
            alias = ""
            if self.draw(st.integers(0, 5)) == 0:
                self.aliases += 1
                alias = f"a{self.aliases}: "
            named = get_named_type(field.type)
            if is_leaf_type(named):
                parts.append(f"{alias}{name}{args}")
            else:
                parts.append(f"{alias}{name}{args} {{ {self.selection(named, depth - 1)} }}")
        return " ".join(parts) or "__typename"

    def root(self, ids: Ids) -> str:
        query_type = self.schema.query_type
        assert query_type is not None
        pick = self.draw
        token = pick(st.sampled_from(ids.tokens))
        choices = {
            "run": f'run(runId: "{ids.run_id}")',
            "token": f'token(tokenId: "{token}")',
            "tokenInRun": f'token(tokenId: "{token}", runId: "{pick(st.sampled_from([ids.run_id, "other"]))}")',
            "explain": f'explain(runId: "{ids.run_id}", tokenId: "{token}")',
            "explainRow": (f'explain(runId: "{ids.run_id}", rowId: "{pick(st.sampled_from(ids.rows))}")'
                           if ids.rows else None),
            "explainTokens": f'explainTokens(runId: "{ids.run_id}", tokenIds: {orjson.dumps(list(ids.tokens[:6])).decode()})',
            "row": f'row(rowId: "{pick(st.sampled_from(ids.rows))}")' if ids.rows else None,
            "nodeState": f'nodeState(stateId: "{pick(st.sampled_from(ids.states))}")' if ids.states else None,
            "call": f'call(callId: "{pick(st.sampled_from(ids.calls))}")' if ids.calls else None,
            "operation": (f'operation(operationId: "{pick(st.sampled_from(ids.operations))}")'
                          if ids.operations else None),
            "batch": f'batch(batchId: "{pick(st.sampled_from(ids.batches))}")' if ids.batches else None,
            "node": f'node(id: "{to_global_id("Token", token)}")',
            "nodes": f'nodes(ids: ["{to_global_id("Token", token)}", "{to_global_id("Run", ids.run_id)}"])',
            "lineagePath": f'lineagePath(fromTokenId: "{ids.tokens[0]}", toTokenId: "{token}")',
            "runs": "runs(first: 2)",
        }
        field_names = {"tokenInRun": "token", "explainRow": "explain"}
        key = pick(st.sampled_from(sorted(k for k, v in choices.items() if v is not None)))
        field = query_type.fields[field_names.get(key, key)]
        return f"{choices[key]} {{ {self.selection(get_named_type(field.type), 3)} }}"


def _generated_targets() -> list[tuple[int, str]]:
    return [(2, "expand-aggregate"), (2, "llm-calls"), (29, "fork-coalesce"), (29, "expand-aggregate"),
            (29, "llm-calls")]


@pytest.fixture(scope="module")
def target_ids(fixture_copies: Path) -> dict[tuple[int, str], list[Ids]]:
    return {key: _ids(fixture_copies / f"epoch{key[0]}" / f"{key[1]}.db") for key in _generated_targets()}


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_generated_queries(pairs: dict[tuple[int, str], Pair],
                                 target_ids: dict[tuple[int, str], list[Ids]], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(_generated_targets()))
    ids = data.draw(st.sampled_from(target_ids[key]))
    pair = pairs[key]
    builder = QueryBuilder(pair.fast.schema._schema, data.draw)  # type: ignore[attr-defined]
    roots = [builder.root(ids) for _ in range(data.draw(st.integers(1, 2)))]
    query = "{ " + " ".join(f"r{i}: {root}" for i, root in enumerate(roots)) + " }"
    await pair.same(query)
