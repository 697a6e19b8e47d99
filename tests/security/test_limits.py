"""Query limits: each is refused before any resolver runs, with a precise error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import get_introspection_query, parse, validate
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache

from landscape_graphql._node_budget import estimate_nodes
from landscape_graphql.error_masking import MaskingSchema
from landscape_graphql.limits import DEFAULT_QUERY_LIMITS, QueryLimits, limit_rules
from landscape_graphql.limits_extension import QueryLimitsExtension

from ._schema import Query, run

BIG_BUDGET = QueryLimits(max_nodes=10**40)


def limited_schema(limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> strawberry.Schema:
    return MaskingSchema(query=Query, extensions=[QueryLimitsExtension.factory(limits)])


async def assert_refused(
    query: str, limit: str, found: int, maximum: int, message: str, **kwargs: Any
) -> dict[str, Any]:
    schema = limited_schema(kwargs.pop("limits", DEFAULT_QUERY_LIMITS))
    result, calls = await run(schema, query, **kwargs)
    assert calls == 0, "a resolver ran for a refused query"
    assert result.data is None
    assert result.errors is not None
    matching = [e for e in result.errors if (e.extensions or {}).get("limit") == limit]
    assert len(matching) == 1, [e.message for e in result.errors]
    error = matching[0]
    assert error.message == message
    assert error.extensions is not None
    assert error.extensions["code"] == "QUERY_LIMIT"
    assert error.extensions["found"] == found
    assert error.extensions["maximum"] == maximum
    return dict(error.formatted)


def nested_descendants(levels: int) -> str:
    inner = "tokenId"
    for _ in range(levels):
        inner = f"descendants {{ {inner} }}"
    return f'{{ token(tokenId: "t") {{ {inner} }} }}'


# ---------------------------------------------------------------- depth


async def test_depth_over_limit_is_refused() -> None:
    # token(1) + 15 x descendants + tokenId = 17
    await assert_refused(
        nested_descendants(15), "depth", 17, 15, "Query depth 17 exceeds the maximum of 15 (limit: depth)"
    )


async def test_depth_at_limit_runs() -> None:
    result, calls = await run(limited_schema(BIG_BUDGET), nested_descendants(13))
    assert result.errors is None
    assert calls > 0


async def test_depth_counts_through_named_and_inline_fragments() -> None:
    query = """
    { token(tokenId: "t") { ...A } }
    fragment A on Token { descendants { ... on Token { descendants { ...B } } } }
    fragment B on Token { descendants { descendants { tokenId } } }
    """
    # token, 4 x descendants, tokenId = 6
    await assert_refused(
        query,
        "depth",
        6,
        5,
        "Query depth 6 exceeds the maximum of 5 (limit: depth)",
        limits=QueryLimits(max_depth=5),
    )


async def test_fragment_cycle_is_refused_without_recursing_forever() -> None:
    query = """
    { token(tokenId: "t") { ...A } }
    fragment A on Token { descendants { ...B } }
    fragment B on Token { ancestors { ...A } }
    """
    result, calls = await run(limited_schema(), query)
    assert calls == 0
    assert result.errors
    assert any("Cannot spread fragment" in e.message for e in result.errors)


# ---------------------------------------------------------------- aliases


def aliased(count: int, field: str = "hello") -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


async def test_aliases_over_limit_are_refused() -> None:
    query = '{ token(tokenId: "t") { ' + " ".join(f"x{i}: tokenId" for i in range(31)) + " } }"
    await assert_refused(
        query, "aliases", 31, 30, "Query alias count 31 exceeds the maximum of 30 (limit: aliases)"
    )


async def test_aliases_in_fragments_count() -> None:
    query = (
        '{ token(tokenId: "t") { ...F } } fragment F on Token { '
        + " ".join(f"x{i}: tokenId" for i in range(11))
        + " }"
    )
    await assert_refused(
        query,
        "aliases",
        11,
        10,
        "Query alias count 11 exceeds the maximum of 10 (limit: aliases)",
        limits=QueryLimits(max_aliases=10),
    )


async def test_aliases_count_once_per_fragment_spread_as_executed() -> None:
    # 29 aliases in one fragment, spread under four different fields: 4 + 4 x 29 run.
    fragment = "fragment F on Token { " + " ".join(f"x{i}: tokenId" for i in range(29)) + " }"
    query = "{ " + " ".join(f'a{i}: token(tokenId: "t") {{ ...F }}' for i in range(4)) + " } " + fragment
    await assert_refused(
        query, "aliases", 120, 30, "Query alias count 120 exceeds the maximum of 30 (limit: aliases)"
    )


async def test_a_fragment_spread_twice_into_one_selection_set_counts_once() -> None:
    fragment = "fragment F on Token { " + " ".join(f"x{i}: tokenId" for i in range(29)) + " }"
    result, _ = await run(limited_schema(), '{ token(tokenId: "t") { ...F ...F } } ' + fragment)
    assert result.errors is None


async def test_directives_count_once_per_fragment_spread() -> None:
    fragment = "fragment F on Token { tokenId @include(if: true) }"
    query = "{ " + " ".join(f'a{i}: token(tokenId: "t") {{ ...F }}' for i in range(3)) + " } " + fragment
    await assert_refused(
        query, "directives", 3, 2, "Query directive count 3 exceeds the maximum of 2 (limit: directives)",
        limits=QueryLimits(max_directives=2),
    )


async def test_two_operations_without_an_operation_name_are_an_error() -> None:
    query = "query A { hello } query B { hello }"
    result, calls = await run(limited_schema(), query)
    assert calls == 0 and result.data is None
    (error,) = result.errors
    assert error.message == "Must provide operation name if query contains multiple operations."
    assert error.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    result, calls = await run(limited_schema(), query, operation_name="B")
    assert result.errors is None and calls == 1


async def test_a_wide_selection_set_is_refused_before_validation() -> None:
    # The adversarial document: 1,200 same-named fields with sub-selections, quadratic to validate.
    query = '{ token(tokenId: "t") { ' + " ".join("children { tokenId }" for _ in range(1200)) + " } }"
    await assert_refused(
        query, "selections", 201, 200,
        "Query selection set size over 201 exceeds the maximum of 200 (limit: selections)")
    # Through fragments too: four spreads of a 60-field fragment under one field.
    fragments = " ".join(f"fragment F{i} on Token {{ " + " ".join(f"c{i}_{j}: tokenId" for j in range(60)) + " }"
                         for i in range(4))
    spread = '{ token(tokenId: "t") { ' + " ".join(f"...F{i}" for i in range(4)) + " } } " + fragments
    await assert_refused(
        spread, "selections", 240, 200,
        "Query selection set size over 240 exceeds the maximum of 200 (limit: selections)",
        limits=QueryLimits(max_aliases=1000))


async def test_a_selection_set_at_the_limit_runs() -> None:
    query = '{ token(tokenId: "t") { ' + " ".join("tokenId" for _ in range(200)) + " } }"
    result, _ = await run(limited_schema(), query)
    assert result.errors is None


async def test_aliases_at_limit_run() -> None:
    query = '{ token(tokenId: "t") { ' + " ".join(f"x{i}: tokenId" for i in range(30)) + " } }"
    result, calls = await run(limited_schema(), query)
    assert result.errors is None
    assert calls == 1


# ---------------------------------------------------------------- root fields


async def test_root_fields_over_limit_are_refused() -> None:
    await assert_refused(
        aliased(21),
        "rootFields",
        21,
        20,
        "Query root field count 21 exceeds the maximum of 20 (limit: rootFields)",
    )


async def test_root_fields_count_through_fragments() -> None:
    query = "{ ...F ... on Query { hello } } fragment F on Query { " + aliased(20)[2:-2] + " }"
    await assert_refused(
        query, "rootFields", 21, 20, "Query root field count 21 exceeds the maximum of 20 (limit: rootFields)"
    )


async def test_root_fields_at_limit_run() -> None:
    result, calls = await run(limited_schema(), aliased(20))
    assert result.errors is None
    assert calls == 20


# ---------------------------------------------------------------- directives


async def test_directives_over_limit_are_refused() -> None:
    query = '{ token(tokenId: "t") { tokenId' + " @include(if: true)" * 51 + " } }"
    await assert_refused(
        query, "directives", 51, 50, "Query directive count 51 exceeds the maximum of 50 (limit: directives)"
    )


async def test_directives_in_fragments_count() -> None:
    query = (
        '{ token(tokenId: "t") @skip(if: false) { ...F } }'
        " fragment F on Token { tokenId @include(if: true) @include(if: true) }"
    )
    await assert_refused(
        query,
        "directives",
        3,
        2,
        "Query directive count 3 exceeds the maximum of 2 (limit: directives)",
        limits=QueryLimits(max_directives=2),
    )


# ---------------------------------------------------------------- tokens


async def test_tokens_over_limit_are_refused() -> None:
    # "{", 5000 names, "}" = 5002 tokens
    query = "{ " + "hello " * 5000 + "}"
    await assert_refused(
        query, "tokens", 5002, 5000, "Query token count 5002 exceeds the maximum of 5000 (limit: tokens)"
    )


async def test_huge_token_count_is_reported_as_lower_bound_quickly() -> None:
    query = "{ " + "hello " * 200_000 + "}"
    started = time.perf_counter()
    await assert_refused(
        query,
        "tokens",
        10_001,
        5000,
        "Query token count over 10001 exceeds the maximum of 5000 (limit: tokens)",
    )
    assert time.perf_counter() - started < 2


async def test_comments_count_against_the_token_limit() -> None:
    query = "#c\n" * 11 + "{ hello }"
    await assert_refused(
        query,
        "tokens",
        11,
        10,
        "Query comment count over 11 exceeds the maximum of 10 (limit: tokens)",
        limits=QueryLimits(max_tokens=10),
    )


async def test_syntax_errors_still_read_as_syntax_errors() -> None:
    result, calls = await run(limited_schema(), "{ hello")
    assert calls == 0
    assert result.errors is not None
    assert result.errors[0].message.startswith("Syntax Error:")
    assert result.errors[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}


# ---------------------------------------------------------------- page size


async def test_page_size_over_limit_is_refused_before_execution() -> None:
    formatted = await assert_refused(
        "{ runs(first: 501) { edges { cursor } } }",
        "pageSize",
        501,
        500,
        "Page size 501 exceeds the maximum of 500 (limit: pageSize)",
    )
    assert formatted["extensions"]["argument"] == "first"
    assert formatted["locations"] == [{"line": 1, "column": 3}]


async def test_page_size_from_variables_and_last_is_checked() -> None:
    await assert_refused(
        "query Q($n: Int) { runs { edges { node { tokens(last: $n) { edges { cursor } } } } } }",
        "pageSize",
        10_000,
        500,
        "Page size 10000 exceeds the maximum of 500 (limit: pageSize)",
        variables={"n": 10_000},
    )


async def test_resolver_side_page_size_error_reaches_client_intact() -> None:
    # Without the extension the resolver's own guard is what refuses.
    schema = MaskingSchema(query=Query)
    result, _ = await run(schema, "{ runs(first: 900) { edges { cursor } } }")
    assert result.errors is not None
    assert result.errors[0].message == "Page size 900 exceeds the maximum of 500 (limit: pageSize)"
    assert result.errors[0].extensions is not None
    assert result.errors[0].extensions["code"] == "QUERY_LIMIT"


# ---------------------------------------------------------------- node budget

NESTED = "{ runs(first: %d) { edges { node { tokens(first: %d) { edges { node { tokenId %s } } } } } } }"


async def test_node_budget_over_limit_is_refused() -> None:
    query = NESTED % (500, 500, "descendants(maxDepth: 3) { tokenId }")
    # 500 runs + 500*500 tokens + 500*500*4^3 descendants
    found = 500 + 250_000 + 250_000 * 64
    await assert_refused(
        query,
        "nodes",
        found,
        500_000,
        f"Query estimated node count {found} exceeds the maximum of 500000 (limit: nodes)",
    )


async def test_node_budget_refusal_still_reports_the_estimate() -> None:
    schema = limited_schema(QueryLimits(max_nodes=100))
    result, calls = await run(schema, NESTED % (10, 10, ""))
    assert calls == 0
    assert result.extensions == {"landscape": {"estimatedNodes": 110}}


async def test_two_full_pages_nested_fit_the_default_budget() -> None:
    result, calls = await run(limited_schema(), NESTED % (500, 500, ""))
    assert result.errors is None
    assert calls > 0
    assert result.extensions == {"landscape": {"estimatedNodes": 250_500}}


async def test_estimate_merges_with_other_landscape_extensions() -> None:
    class SqlStats(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            self.execution_context.extensions_results.setdefault("landscape", {})["sqlStatements"] = 3
            yield

    schema = MaskingSchema(query=Query, extensions=[SqlStats, QueryLimitsExtension.factory()])
    result, _ = await run(schema, "{ runs(first: 4) { edges { cursor } } }")
    assert result.extensions == {"landscape": {"sqlStatements": 3, "estimatedNodes": 4}}


SCHEMA = strawberry.Schema(query=Query)


def est(
    query: str, variables: dict[str, Any] | None = None, limits: QueryLimits = DEFAULT_QUERY_LIMITS
) -> int:
    return estimate_nodes(parse(query), SCHEMA, variables, None, limits)


def test_estimate_connections_multiply_and_default_to_50() -> None:
    assert est(NESTED % (10, 20, "")) == 10 + 10 * 20
    assert est("{ runs { edges { node { runId } } } }") == 50
    assert est("{ runs { edges { node { tokens { edges { cursor } } } } } }") == 50 + 50 * 50


def test_estimate_resolves_variables_defaults_and_fragments() -> None:
    query = (
        "query Q($n: Int = 7) { runs(first: $n) { ...R } } fragment R on RunConnection { edges { cursor } }"
    )
    assert est(query) == 7
    assert est(query, {"n": 3}) == 3
    spread = "{ runs(first: 2) { edges { node { ...T } } } } fragment T on Run { tokens(first: 5) { edges { cursor } } }"
    assert est(spread) == 2 + 10


def test_estimate_traversals_are_capped_by_the_token_budget() -> None:
    single = '{ token(tokenId: "x") { %s { tokenId } } }'
    assert est(single % "ancestors(maxDepth: 2)") == 1 + 16
    assert est(single % "descendants") == 1 + 64  # schema default maxDepth: 3
    assert est(single % "ancestors") == 1 + 10_000  # unbounded: the whole budget
    started = time.perf_counter()
    assert est(single % "ancestors(maxDepth: 2147483647)") == 1 + 10_000
    assert time.perf_counter() - started < 0.5
    tuned = QueryLimits(traversal_fanout=2, traversal_token_budget=100)
    assert est(single % "ancestors(maxDepth: 3)", limits=tuned) == 1 + 8
    assert est(single % "ancestors(maxDepth: 30)", limits=tuned) == 1 + 100


def test_estimate_counts_unpaginated_lists_and_id_lookups() -> None:
    token = '{ token(tokenId: "x") { %s } }'
    assert est(token % "children { tokenId }") == 1 + 5
    assert est(token % "children { children { tokenId } }") == 1 + 5 + 25
    assert est(token % "children { tokenId }", limits=QueryLimits(unpaginated_list_size=2)) == 1 + 2
    assert est('{ tokensById(ids: ["a", "b", "c"]) { tokenId } }') == 3
    assert est(
        "query Q($ids: [String!]!) { tokensById(ids: $ids) { children { tokenId } } }", {"ids": ["a"] * 7}
    ) == (7 + 7 * 5)


def test_estimate_does_not_double_count_a_wrappers_item_lists() -> None:
    # lineage(maxDepth: 2) yields 16 tokens; its `tokens` list is those 16, not 16 x 5.
    query = '{ token(tokenId: "x") { lineage(maxDepth: 2) { tokens { tokenId children { tokenId } } root { tokenId } } } }'
    assert est(query) == 1 + 16 + 16 * 5
    assert est("{ runs(first: 4) { edges { node { runId } } } }") == 4


def test_estimate_root_rules_apply_through_fragments() -> None:
    assert est('{ ...Q } fragment Q on Query { token(tokenId: "x") { tokenId } }') == 1
    assert est('{ ... on Query { token(tokenId: "x") { tokenId } } }') == 1


def test_estimate_honours_skip_and_include() -> None:
    query = "query Q($on: Boolean!) { runs(first: 10) @include(if: $on) { edges { cursor } } hello }"
    assert est(query, {"on": True}) == 10
    assert est(query, {"on": False}) == 0


def test_estimate_stays_linear_with_exponential_fragment_fanout() -> None:
    fragments = [f"fragment F{i} on Token {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    fragments.append("fragment F40 on Token { ancestors(maxDepth: 1) { tokenId } }")
    query = '{ token(tokenId: "x") { ...F0 } } ' + " ".join(fragments)
    started = time.perf_counter()
    # Identical spreads merge at execution, but the estimate counts each spread:
    # an upper bound that must still be cheap to compute.
    assert est(query) == 1 + 2**40 * 4
    assert time.perf_counter() - started < 0.5


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2000),
    st.integers(0, 2000),
    st.integers(0, 2000),
    st.integers(0, 2000),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_estimate_is_monotone(a: int, b: int, c: int, d: int, depth_a: int, depth_b: int) -> None:
    traversal = "ancestors(maxDepth: {}) {{ tokenId }}"
    query = NESTED % (a, b, traversal.format(depth_a))
    bigger = NESTED % (max(a, c), max(b, d), traversal.format(max(depth_a, depth_b)))
    assert est(query) <= est(bigger)


# ---------------------------------------------------------------- introspection, rules, config


async def test_graphiql_introspection_passes_default_limits() -> None:
    result, _ = await run(limited_schema(), get_introspection_query(descriptions=True))
    assert result.errors is None
    assert result.data is not None
    assert result.data["__schema"]["queryType"]["name"] == "Query"


async def test_limits_hold_alongside_strawberry_parser_and_validation_caches() -> None:
    schema = MaskingSchema(
        query=Query,
        extensions=[
            QueryLimitsExtension.factory(),
            lambda: ParserCache(maxsize=8),
            lambda: ValidationCache(maxsize=8),
        ],
    )
    for _ in range(2):  # second round served from the caches
        deep, calls = await run(schema, nested_descendants(15))
        assert calls == 0
        assert deep.errors is not None
        assert deep.errors[0].message == "Query depth 17 exceeds the maximum of 15 (limit: depth)"
        ok, calls = await run(schema, "{ runs(first: 3) { edges { cursor } } }")
        assert ok.errors is None
        assert ok.extensions == {"landscape": {"estimatedNodes": 3}}
    # Even a ParserCache placed first is bounded by the token limit.
    misordered = MaskingSchema(query=Query, extensions=[ParserCache, QueryLimitsExtension.factory()])
    huge, calls = await run(misordered, "{ " + "hello " * 200_000 + "}")
    assert calls == 0
    assert huge.errors is not None
    assert "more than 5000 tokens" in huge.errors[0].message


def test_limit_rules_plug_into_graphql_validate() -> None:
    errors = validate(SCHEMA._schema, parse(nested_descendants(2)), limit_rules(QueryLimits(max_depth=3)))
    assert [e.message for e in errors] == ["Query depth 4 exceeds the maximum of 3 (limit: depth)"]
    assert validate(SCHEMA._schema, parse(nested_descendants(2)), limit_rules()) == []


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        QueryLimits(max_depth=0)
    with pytest.raises(ValueError, match="default_page_size"):
        QueryLimits(default_page_size=600)


# ---------------------------------------------------------------- body size


def test_default_body_limit_is_one_mebibyte() -> None:
    assert DEFAULT_QUERY_LIMITS.max_body_bytes == 1_048_576


async def test_estimates_are_cached_per_document_and_variables_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from landscape_graphql import _caches
    from landscape_graphql import _node_budget as limits_module

    walks = 0
    real = limits_module._estimate

    def counting(*args: Any, **kwargs: Any) -> int:
        nonlocal walks
        walks += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(limits_module, "_estimate", counting)
    query = "query ($n: Int) { runs(first: $n) { edges { cursor } } }"
    # Room for about ten entries of this query.
    small = _caches.ByteLRU(10 * (_caches.text_weight(len(query)) + 20))
    monkeypatch.setattr(limits_module, "_estimates", small)
    schema = limited_schema()
    estimates = []
    for n in (4, 4, 7, 4):
        result, _ = await run(schema, query, {"n": n})
        estimates.append(result.extensions["landscape"]["estimatedNodes"])
    # the same page size is not walked again; another one is, and gets its own figure
    assert estimates == [4, 4, 7, 4]
    assert walks == 2
    # an estimate over the budget is refused every time, cached or not
    over = "query ($n: Int) { runs(first: $n) { edges { node { tokens(first: $n) { edges { cursor } } } } } }"
    tight = MaskingSchema(query=Query, extensions=[QueryLimitsExtension.factory(QueryLimits(max_nodes=10))])
    for _ in range(2):
        result, calls = await run(tight, over, {"n": 5})
        assert calls == 0 and result.errors[0].extensions["code"] == "QUERY_LIMIT"
        assert result.extensions["landscape"]["estimatedNodes"] == 30
    assert walks == 3
    # a page size over the maximum stops the walk itself; nothing is cached, it is walked again
    for _ in range(2):
        result, calls = await run(schema, query, {"n": 501})
        assert calls == 0 and result.errors[0].extensions["code"] == "QUERY_LIMIT"
    assert walks == 5
    for n in range(50):
        await run(schema, query, {"n": n % 400 + 1, "pad": n})
    assert small.bytes <= small.max_bytes and 5 <= len(small) <= 10


async def test_requests_differing_only_in_ids_share_an_estimate_but_bad_variables_never_set_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from landscape_graphql import _caches
    from landscape_graphql import _node_budget as limits_module

    walks = 0
    real = limits_module._estimate

    def counting(*args: Any, **kwargs: Any) -> int:
        nonlocal walks
        walks += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(limits_module, "_estimate", counting)
    monkeypatch.setattr(limits_module, "_estimates", _caches.ByteLRU(_caches.ESTIMATE_CACHE_BYTES))
    schema = limited_schema()
    query = "query ($t: String!, $n: Int) { token(tokenId: $t) { tokenId } runs(first: $n) { edges { cursor } } }"
    estimates = set()
    for token_id in ("a", "b", "c"):
        result, _ = await run(schema, query, {"t": token_id, "n": 4})
        estimates.add(result.extensions["landscape"]["estimatedNodes"])
    assert walks == 1 and len(estimates) == 1
    # A String variable that does not coerce makes the estimate use defaults (first: 50): it
    # must not be cached under {n: 400}, where a valid request would find it.
    await run(schema, query, {"t": 5, "n": 400})
    result, _ = await run(schema, query, {"t": "a", "n": 400})
    assert result.extensions["landscape"]["estimatedNodes"] == estimates.pop() + 396
