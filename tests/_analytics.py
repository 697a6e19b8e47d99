"""Shared by the analytics tests: ELSPETH's recorded answers and the all-analytics query."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.conftest import FIXTURES

ANALYTICS_FIXTURES = [(2, "fork-coalesce"), (2, "expand-aggregate"), (2, "llm-calls"), (2, "examples-multirun"),
                      (29, "fork-coalesce"), (29, "expand-aggregate"), (29, "llm-calls")]

OUTCOME = "terminal rowOutcome result path storedView count"

RUN_ANALYTICS = f"""
summary {{ durationSeconds avgStateDurationMs
  counts {{ rows tokens nodes nodeStates operations sourceLoads sinkWrites runtimePreflights }}
  errors {{ validation transform total }}
  outcomes {{ {OUTCOME} }} tokenOutcomes {{ {OUTCOME} }} }}
performance {{ totalMs nodes {{ nodeId node {{ pluginName }} plugin nodeType executions failures retries
  avgMs minMs maxMs p50Ms p95Ms p99Ms totalMs pctOfTotal isBottleneck isHighVariance }} }}
errorAnalysis {{
  validation {{ total bySource {{ nodeId node {{ nodeId }} plugin schemaMode count }}
               sample {{ errorId rowHash createdAt rowData }} }}
  transform {{ total byTransform {{ nodeId node {{ nodeId }} plugin count }}
              sample {{ errorId createdAt errorDetails }} }} }}
llmUsage {{ callTypes {{ callType count }}
  byNode {{ nodeId node {{ nodeId }} plugin total successful failed avgLatencyMs p95LatencyMs totalLatencyMs }}
  total {{ calls successful failed avgLatencyMs totalLatencyMs }}
  tokenUsage {{ promptTokens completionTokens totalTokens callsCounted callsWithoutUsage }} }}
outcomeAnalysis {{ terminal nonTerminal forkGroups joinGroups outcomes {{ {OUTCOME} }} sinks {{ sinkName count }} }}
failureContext {{
  failedStates {{ stateId tokenId nodeId stepIndex attempt startedAt }}
  transformErrors {{ errorId tokenId transformId createdAt errorDetails }}
  validationErrors {{ errorId nodeId rowHash createdAt rowData }}
  patterns {{ failingNodes {{ nodeId plugin failedStates node {{ nodeId }} }} hasRetries failedStateCount
             transformErrorCount validationErrorCount }} }}
contract {{ sourceNodeId sourceName plugin lifecycleState recordedAt mode locked versionHash
  fields {{ normalizedName originalName pythonType required nullable origin }} normalizationVersion
  nameResolution {{ originalName normalizedName }} node {{ nodeId }} }}
"""

RUNS_QUERY = "query ($n: Int!) { runs(first: $n) { nodes { runId status " + RUN_ANALYTICS + " } } }"
RUN_QUERY = "query ($r: String!) { run(runId: $r) { runId status " + RUN_ANALYTICS + " } }"


def elspeth(epoch: int, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"epoch{epoch}" / "analytics" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def multiset(items: Any) -> Counter[str]:
    return Counter(json.dumps(i, sort_keys=True) for i in items)


def close(a: float | None, b: float | None, tol: float = 0.01) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol
