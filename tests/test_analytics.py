"""Run analytics against ELSPETH's own answers, run by run, on SQLite and PostgreSQL.

Where we differ on purpose, the test says so and checks ours:
- error buckets are by node, not by plugin name: summed by plugin they give ELSPETH's buckets;
- failure-context counts are totals, ELSPETH's are the lengths of its lists cut at 10;
- samples are ordered (earliest first); ELSPETH's have no ORDER BY but were the earliest here;
- avgMs and pctOfTotal are not rounded (ELSPETH rounds to 0.01 and 0.1).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

from tests._analytics import ANALYTICS_FIXTURES, RUNS_QUERY, close, elspeth, multiset
from tests.conftest import Api

_cache: dict[tuple[int, str, int], dict[str, Any]] = {}


async def _ours(api: Api, epoch: int, name: str) -> dict[str, Any]:
    key = (epoch, name, id(api))
    if key not in _cache:
        result = await api.run(RUNS_QUERY, {"n": 50})
        assert not result.errors, result.errors
        _cache[key] = {r["runId"]: r for r in result.data["runs"]["nodes"]}
    return _cache[key]


async def _pairs(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    theirs = elspeth(epoch, name)["runs"]
    ours = await _ours(apis[(epoch, name)], epoch, name)
    assert set(ours) == set(theirs)
    return [(ours[run_id], theirs[run_id]) for run_id in sorted(theirs)]


def _outcomes_as_elspeth(epoch: int, groups: list[dict[str, Any]], terminal_key: str) -> Any:
    if epoch == 2:
        return [{"outcome": g["rowOutcome"].lower(), terminal_key: g["terminal"], "count": g["count"]}
                for g in groups]
    return [{"outcome": g["result"].lower() if g["result"] else None, "path": g["path"].lower(),
             "completed": g["terminal"], "count": g["count"]} for g in groups]


fixtures = pytest.mark.parametrize(("epoch", "name"), ANALYTICS_FIXTURES)


@fixtures
async def test_summary(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        s, t = ours["summary"], theirs["get_run_summary"]
        expected = {k: v for k, v in t["counts"].items()}
        got = {"rows": s["counts"]["rows"], "tokens": s["counts"]["tokens"], "nodes": s["counts"]["nodes"],
               "node_states": s["counts"]["nodeStates"], "operations": s["counts"]["operations"],
               "source_loads": s["counts"]["sourceLoads"], "sink_writes": s["counts"]["sinkWrites"]}
        if epoch == 29:
            got["runtime_preflights"] = s["counts"]["runtimePreflights"]
        else:
            assert s["counts"]["runtimePreflights"] is None
        assert got == expected
        assert s["errors"] == {"validation": t["errors"]["validation"], "transform": t["errors"]["transform"],
                               "total": t["errors"]["total"]}
        assert close(s["durationSeconds"], t["run_duration_seconds"])
        assert close(s["avgStateDurationMs"], t["avg_state_duration_ms"])
        assert all(g["storedView"] == ("ROW_OUTCOME" if epoch == 2 else "RESULT_PATH") for g in s["outcomes"])
        if epoch == 2:
            assert dict(Counter({g["rowOutcome"].lower(): g["count"] for g in s["outcomes"]})) == \
                t["outcome_distribution"]
        else:
            assert multiset(_outcomes_as_elspeth(epoch, s["outcomes"], "")) == multiset(t["outcome_distribution"])
        # Ours, not ELSPETH's: tokens by their current outcome, each token once.
        assert sum(g["count"] for g in s["tokenOutcomes"]) == s["counts"]["tokens"]
        buffered_twice = sum(g["count"] for g in s["outcomes"] if not g["terminal"])
        if buffered_twice == 0 and sum(g["count"] for g in s["outcomes"]) == s["counts"]["tokens"]:
            assert multiset(s["tokenOutcomes"]) == multiset(s["outcomes"])


@fixtures
async def test_performance(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        p, t = ours["performance"], theirs["get_performance_report"]
        assert len(p["nodes"]) == t["node_count"]
        assert close(p["totalMs"], t["total_processing_time_ms"])
        by_id = {n["node_id"]: n for n in t["node_performance"]}
        assert {n["nodeId"] for n in p["nodes"]} == set(by_id)
        for n in p["nodes"]:
            e = by_id[n["nodeId"]]
            assert (n["plugin"], n["nodeType"].lower(), n["node"]["pluginName"]) == (e["plugin"], e["type"], e["plugin"])
            assert (n["executions"], n["failures"]) == (e["executions"], e["failures"])
            for ours_key, their_key in (("minMs", "min_ms"), ("maxMs", "max_ms"), ("totalMs", "total_ms"),
                                        ("avgMs", "avg_ms")):
                assert close(n[ours_key], e[their_key]), (n["nodeId"], ours_key)
            assert close(n["pctOfTotal"], e["pct_of_total"], 0.1)
            assert n["minMs"] <= n["p50Ms"] <= n["p95Ms"] <= n["p99Ms"] <= n["maxMs"]
        assert {n["nodeId"] for n in p["nodes"] if n["isBottleneck"]} == {b["node_id"] for b in t["bottlenecks"]}
        assert {n["nodeId"] for n in p["nodes"] if n["isHighVariance"]} == \
            {b["node_id"] for b in t["high_variance_nodes"]}
        totals = [n["totalMs"] for n in p["nodes"]]
        assert totals == sorted(totals, reverse=True)


@fixtures
async def test_error_analysis(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        v, t = ours["errorAnalysis"]["validation"], theirs["get_error_analysis"]["validation_errors"]
        assert v["total"] == t["total"]
        # By node here; summed by plugin (and schema mode) they are ELSPETH's buckets.
        by_plugin: Counter[tuple[Any, Any]] = Counter()
        for b in v["bySource"]:
            by_plugin[(b["plugin"], b["schemaMode"])] += b["count"]
        assert by_plugin == Counter({(b["source_plugin"], b["schema_mode"]): b["count"] for b in t["by_source"]})
        assert [s["rowData"] for s in v["sample"]] == t["sample_data"]
        x, tt = ours["errorAnalysis"]["transform"], theirs["get_error_analysis"]["transform_errors"]
        assert x["total"] == tt["total"]
        by_transform: Counter[str] = Counter()
        for b in x["byTransform"]:
            by_transform[b["plugin"]] += b["count"]
        assert by_transform == Counter({b["transform_plugin"]: b["count"] for b in tt["by_transform"]})
        assert [s["errorDetails"] for s in x["sample"]] == tt["sample_details"]
        times = [s["createdAt"] for s in x["sample"]]
        assert times == sorted(times)


@fixtures
async def test_llm_usage(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        u, t = ours["llmUsage"], theirs["get_llm_usage_report"]
        assert {c["callType"].lower(): c["count"] for c in u["callTypes"]} == t["call_types"]
        expected_plugins = t.get("by_plugin", {})
        by_plugin: dict[str, dict[str, Any]] = defaultdict(lambda: {"total_calls": 0, "successful": 0, "failed": 0,
                                                                    "total_latency_ms": 0.0})
        for n in u["byNode"]:
            b = by_plugin[n["plugin"]]
            b["total_calls"] += n["total"]
            b["successful"] += n["successful"]
            b["failed"] += n["failed"]
            b["total_latency_ms"] += n["totalLatencyMs"]
            assert n["p95LatencyMs"] is not None and n["p95LatencyMs"] * n["total"] <= n["totalLatencyMs"] * 20
        assert set(by_plugin) == set(expected_plugins)
        for plugin, e in expected_plugins.items():
            got = by_plugin[plugin]
            assert (got["total_calls"], got["successful"], got["failed"]) == \
                (e["total_calls"], e["successful"], e["failed"])
            assert close(got["total_latency_ms"], e["total_latency_ms"])
        summary = t.get("llm_summary", {"total_calls": 0, "total_latency_ms": 0.0, "avg_latency_ms": None})
        assert u["total"]["calls"] == summary["total_calls"]
        assert close(u["total"]["totalLatencyMs"], summary["total_latency_ms"])
        assert close(u["total"]["avgLatencyMs"], summary["avg_latency_ms"])
        usage = u["tokenUsage"]
        # Ours only: tokens from the stored responses of the LLM calls (epoch 2 stored them as http).
        assert usage["callsCounted"] + usage["callsWithoutUsage"] == u["total"]["calls"]
        if usage["callsCounted"] == 0:
            assert usage["promptTokens"] is usage["completionTokens"] is usage["totalTokens"] is None
        else:
            assert usage["promptTokens"] + usage["completionTokens"] == usage["totalTokens"]


async def test_token_usage_of_the_llm_fixture(apis: dict[tuple[int, str], Api]) -> None:
    # 42 LLM calls: 38 answered with a usage object, 4 failed (no usable response).
    ours = await _ours(apis[(29, "llm-calls")], 29, "llm-calls")
    (run,) = ours.values()
    assert run["llmUsage"]["tokenUsage"] == {"promptTokens": 2770, "completionTokens": 1029, "totalTokens": 3799,
                                             "callsCounted": 38, "callsWithoutUsage": 4}
    # Epoch 2 recorded its 44 LLM calls as http: reported as stored, so no LLM usage.
    (run2,) = (await _ours(apis[(2, "llm-calls")], 2, "llm-calls")).values()
    assert {c["callType"]: c["count"] for c in run2["llmUsage"]["callTypes"]} == {"HTTP": 44}
    assert run2["llmUsage"]["tokenUsage"]["callsCounted"] == 0


async def test_token_usage_without_payload_store(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(29, "llm-calls")]
    bare = Api(api.landscape)
    try:
        data = await bare.ok("{ runs { nodes { llmUsage { tokenUsage { promptTokens totalTokens callsCounted "
                             "callsWithoutUsage } } } } }")
    finally:
        bare.counter.close()
    assert data["runs"]["nodes"][0]["llmUsage"]["tokenUsage"] == {
        "promptTokens": None, "totalTokens": None, "callsCounted": 0, "callsWithoutUsage": 42}


@fixtures
async def test_outcome_analysis(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        o, t = ours["outcomeAnalysis"], theirs["get_outcome_analysis"]
        assert (o["terminal"], o["nonTerminal"], o["forkGroups"], o["joinGroups"]) == (
            t["summary"]["terminal_tokens"], t["summary"]["non_terminal_tokens"],
            t["summary"]["fork_operations"], t["summary"]["join_operations"])
        assert {s["sinkName"]: s["count"] for s in o["sinks"]} == t["sink_distribution"]
        assert multiset(_outcomes_as_elspeth(epoch, o["outcomes"], "is_terminal")) == \
            multiset(t["outcome_distribution"])


@fixtures
async def test_failure_context(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for ours, theirs in await _pairs(apis, epoch, name):
        f, t = ours["failureContext"], theirs["get_failure_context"]
        assert [s["stateId"] for s in f["failedStates"]] == [s["state_id"] for s in t["failed_node_states"]]
        assert [(s["stepIndex"], s["attempt"]) for s in f["failedStates"]] == \
            [(s["step"], s["attempt"]) for s in t["failed_node_states"]]
        assert [(e["tokenId"], e["errorDetails"]) for e in f["transformErrors"]] == \
            [(e["token_id"], e["details"]) for e in t["transform_errors"]]
        assert [(e["rowHash"][:12] + "...", e["rowData"]) for e in f["validationErrors"]] == \
            [(e["row_hash"], e["sample_data"]) for e in t["validation_errors"]]
        p, tp = f["patterns"], t["patterns"]
        # Totals here; ELSPETH's "counts" are the lengths of its lists, cut at 10.
        assert p["failedStateCount"] == sum(n["failedStates"] for n in p["failingNodes"])
        assert min(p["failedStateCount"], 10) == tp["failure_count"]
        assert min(p["transformErrorCount"], 10) == tp["transform_error_count"]
        assert min(p["validationErrorCount"], 10) == tp["validation_error_count"]
        assert p["transformErrorCount"] == ours["summary"]["errors"]["transform"]
        assert p["validationErrorCount"] == ours["summary"]["errors"]["validation"]
        # Every failing node here; ELSPETH names the plugins of its 10 latest failed states.
        plugins = {n["nodeId"]: n["plugin"] for n in p["failingNodes"]}
        assert set(tp["plugins_failing"]) == {plugins[s["nodeId"]] for s in f["failedStates"]}
        assert p["hasRetries"] or not tp["has_retries"]


async def test_failure_context_totals_beyond_the_cut(apis: dict[tuple[int, str], Api]) -> None:
    # ELSPETH says 10 and 10 for epoch-2 fork-coalesce; there are 51 failed states, 23 errors.
    (run,) = (await _ours(apis[(2, "fork-coalesce")], 2, "fork-coalesce")).values()
    p = run["failureContext"]["patterns"]
    assert (p["failedStateCount"], p["transformErrorCount"]) == (51, 23)
    # ELSPETH merges the two keyword_filter nodes into one bucket of 23.
    assert sorted(b["count"] for b in run["errorAnalysis"]["transform"]["byTransform"]) != [23]
    assert sum(b["count"] for b in run["errorAnalysis"]["transform"]["byTransform"]) == 23
