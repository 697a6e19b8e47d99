"""Run analytics: statement counts, diagnose at a given instant, scoping, percentiles, fast path."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from landscape_graphql.settings import Settings
from tests._analytics import ANALYTICS_FIXTURES, RUN_QUERY, RUNS_QUERY, elspeth
from tests.conftest import PG_DUMP, Api, payload_dir


async def test_all_analytics_cost_the_same_for_1_and_12_runs(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "examples-multirun")]
    one = await api.run(RUNS_QUERY, {"n": 1})
    many = await api.run(RUNS_QUERY, {"n": 50})
    assert not one.errors and not many.errors, (one.errors, many.errors)
    assert len(many.data["runs"]["nodes"]) == 12
    assert many.cost["rowsRead"] > one.cost["rowsRead"]
    assert one.statements == many.statements
    # runs page; counts (tokens by outcome come from these and the outcome records); outcome
    # records; sinks; node statistics (performance, state counts, failing nodes); percentiles;
    # error buckets; 2 samples; LLM call types, by node and responses; failed states; 2
    # latest-error lists; source contracts. Every `node` of these comes with its figures.
    assert many.statements == 16, many.statements


async def test_analytics_of_elspeths_own_postgresql_database(apis: dict[tuple[int, str], Api]) -> None:
    if PG_DUMP not in apis:
        return  # ELSPETH's PostgreSQL dump exists only on the PostgreSQL backend
    result = await apis[PG_DUMP].run(RUNS_QUERY, {"n": 50})
    assert not result.errors, result.errors
    (run,) = result.data["runs"]["nodes"]
    assert run["summary"]["counts"]["tokens"] == sum(g["count"] for g in run["summary"]["tokenOutcomes"]) > 0
    assert run["performance"]["nodes"]


def _diagnose_query() -> str:
    return """query ($at: DateTime!) { diagnose(asOf: $at) { status
      problems { severity kind count runIds operationIds } recentRuns { runId status startedAt } } }"""


def _as_elspeth(diagnosis: dict[str, Any]) -> dict[str, Any]:
    return {"status": diagnosis["status"],
            "problems": [{"severity": p["severity"], "type": p["kind"].lower(), "count": p["count"]}
                         for p in diagnosis["problems"]],
            "recent_runs": [{"run_id": r["runId"][:12] + "...", "status": r["status"].lower(),
                             "started": datetime.fromisoformat(r["startedAt"]).replace(tzinfo=None).isoformat()}
                            for r in diagnosis["recentRuns"]]}


def _theirs(result: dict[str, Any]) -> dict[str, Any]:
    return {"status": result["status"], "recent_runs": result["recent_runs"],
            "problems": [{k: p[k] for k in ("severity", "type", "count")} for p in result["problems"]]}


async def test_diagnose_gives_elspeths_two_answers(apis: dict[tuple[int, str], Api]) -> None:
    """Outside the quarantine window ELSPETH's `diagnose`; inside it `diagnose_pinned_now`."""
    for epoch, name in ANALYTICS_FIXTURES:
        recorded = elspeth(epoch, name)["database"]
        api = apis[(epoch, name)]
        for at, expected in ((recorded["ran_at"], recorded["diagnose"]),
                             (recorded["diagnose_pinned_now"]["now"], recorded["diagnose_pinned_now"]["result"])):
            data = await api.ok(_diagnose_query(), {"at": at})
            assert _as_elspeth(data["diagnose"]) == _theirs(expected), (epoch, name, at)
            # The clock is the argument: asking again gives the same answer.
            assert await api.ok(_diagnose_query(), {"at": at}) == data


async def test_diagnose_rules_and_arguments(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    query = """query ($at: DateTime!, $v: Int!, $w: Int!) { diagnose(asOf: $at, validationErrorThreshold: $v,
      quarantineWindowSeconds: $w) { status problems { severity kind count runIds } } }"""
    # 8 validation errors: over a threshold of 7, not of 8.
    data = await api.ok(query, {"at": "2026-11-22T01:46:09Z", "v": 7, "w": 0})
    assert [(p["kind"], p["count"]) for p in data["diagnose"]["problems"]] == [("HIGH_VALIDATION_ERRORS", 1)]
    data = await api.ok(query, {"at": "2026-11-22T01:46:09Z", "v": 8, "w": 0})
    assert data["diagnose"] == {"status": "OK", "problems": []}
    # A window reaching back to the run's start counts its 8 quarantined rows; an offset asOf is the same instant.
    data = await api.ok(query, {"at": "2026-11-22T03:46:09+02:00", "v": 8, "w": 60})
    assert [(p["severity"], p["kind"], p["count"]) for p in data["diagnose"]["problems"]] == \
        [("INFO", "QUARANTINED_ROWS", 8)]
    bad = await api.run(query, {"at": "2026-11-22T01:46:09Z", "v": 8, "w": -1})
    assert bad.errors[0]["extensions"]["code"] == "BAD_ARGUMENT"


async def test_scoped_principal_sees_analytics_of_its_runs_only(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "examples-multirun")]
    all_runs = (await api.ok(RUNS_QUERY, {"n": 50}))["runs"]["nodes"]
    mine, other = all_runs[3], all_runs[0]
    scoped = frozenset({mine["runId"]})
    seen = await api.ok(RUNS_QUERY, {"n": 50}, allowed_runs=scoped)
    assert seen["runs"]["nodes"] == [mine]
    assert (await api.ok(RUN_QUERY, {"r": other["runId"]}, allowed_runs=scoped))["run"] is None
    at = elspeth(2, "examples-multirun")["database"]["ran_at"]
    diagnosis = (await api.ok(_diagnose_query(), {"at": at}, allowed_runs=scoped))["diagnose"]
    assert [r["runId"] for r in diagnosis["recentRuns"]] == [mine["runId"]]
    nobody = (await api.ok(_diagnose_query(), {"at": at}, allowed_runs=frozenset()))["diagnose"]
    assert nobody == {"status": "OK", "problems": [], "recentRuns": []}
    # Quarantined rows of a run outside the scope are not counted.
    fc = apis[(2, "fork-coalesce")]
    pinned = elspeth(2, "fork-coalesce")["database"]["diagnose_pinned_now"]["now"]
    hidden = (await fc.ok(_diagnose_query(), {"at": pinned}, allowed_runs=frozenset({"x"})))["diagnose"]
    assert hidden["problems"] == [] and hidden["status"] == "OK"


def _nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


async def test_percentiles_are_nearest_rank(apis: dict[tuple[int, str], Api]) -> None:
    for key in [(2, "fork-coalesce"), (29, "llm-calls")]:
        api = apis[key]
        data = await api.ok("{ runs { nodes { runId performance { nodes { nodeId p50Ms p95Ms p99Ms } } "
                            "llmUsage { byNode { nodeId p95LatencyMs } } } } }")
        s = api.landscape.tables.node_states
        async with api.landscape.engine.connect() as conn:
            rows = (await conn.execute(sa.select(s.c.node_id, s.c.duration_ms)
                                       .where(s.c.duration_ms.is_not(None)))).all()
        durations: dict[str, list[float]] = {}
        for node_id, ms in rows:
            durations.setdefault(node_id, []).append(ms)
        (run,) = data["runs"]["nodes"]
        for n in run["performance"]["nodes"]:
            got = (n["p50Ms"], n["p95Ms"], n["p99Ms"])
            assert got == tuple(_nearest_rank(durations[n["nodeId"]], p) for p in (50, 95, 99)), n["nodeId"]


async def test_bad_list_sizes_are_refused(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "llm-calls")]
    for field, code in (("errorAnalysis(sample: -1) { transform { total } }", "BAD_ARGUMENT"),
                        ("errorAnalysis(sample: 501) { transform { total } }", "BAD_ARGUMENT"),
                        # `first` is a page size to the query limits, checked before any SQL.
                        ("failureContext(first: 501) { patterns { hasRetries } }", "QUERY_LIMIT")):
        result = await api.run("{ runs { nodes { " + field + " } } }")
        assert result.errors[0]["extensions"]["code"] == code, result.errors


async def test_fast_execution_answers_as_stock(apis: dict[tuple[int, str], Api]) -> None:
    """The analytics fields declare no relation: the fast path calls their resolvers."""
    for key in [(2, "examples-multirun"), (29, "llm-calls"), (29, "fork-coalesce")]:
        landscape = apis[key].landscape
        fast = Api(landscape, Settings(fast_execution=True), payload_roots=(payload_dir(*key),))
        stock = Api(landscape, Settings(fast_execution=False), payload_roots=(payload_dir(*key),))
        try:
            a = await fast.run(RUNS_QUERY, {"n": 50})
            b = await stock.run(RUNS_QUERY, {"n": 50})
        finally:
            fast.counter.close()
            stock.counter.close()
        assert not a.errors and not b.errors
        assert orjson.dumps(a.data) == orjson.dumps(b.data)
        if landscape.backend != "postgresql":  # see test_execution_differential: timing on PostgreSQL
            assert a.statements <= b.statements
