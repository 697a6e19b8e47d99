"""The demo generator's databases pass every integrity rule this API enforces, in both epochs.

Every token of a generated mixed Landscape is read through the API with all its relations: any
AUDIT_INTEGRITY error (or any other) fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from landscape_graphql.db.engine import open_landscape
from landscape_graphql.demo import generate
from tests.conftest import Api

EVERYTHING = """
query ($r: String!, $after: String) { run(runId: $r) {
  status dag { mermaid edges { tokenCount } }
  tokens(first: 500, after: $after) { pageInfo { hasNextPage endCursor } nodes {
    tokenId row { rowId sourceData { state } validationErrors { errorId matchedBy } }
    parents { tokenId } children { tokenId } data { state }
    nodeStates { stateId status calls { callType request { state } response { state } }
                 routingEvents { mode edge { label } reason { state } } }
    outcome { terminal result path rowOutcome sinkName batch { batchId } }
    outcomes { outcomeId } transformErrors { errorId } artifacts { artifactId }
    memberOfBatches { batchId members { ordinal } outputs { tokenId } }
    producedByBatch { batchId }
    ancestors(maxDepth: 2) { truncated edges { kind } }
    descendants(maxDepth: 2) { truncated edges { kind } }
  } }
  operations(first: 500) { nodes { operationType calls { callType } input { state } output { state } } }
} }
"""


@pytest.fixture(scope="module", params=[2, 29])
async def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Api, object]]:
    out = tmp_path_factory.mktemp(f"demo{request.param}") / "demo.db"
    report = generate(out, epoch=request.param, rows=30, seed=7)
    landscape = await open_landscape(str(out))
    api = Api(landscape, payload_roots=(report.payload_dir,))
    yield api, report
    api.counter.close()
    await landscape.dispose()


async def test_every_token_of_every_run_reads_without_any_error(demo: tuple[Api, object]) -> None:
    api, report = demo
    assert len(report.run_ids) >= 3  # type: ignore[attr-defined]
    seen = 0
    for run_id in report.run_ids:  # type: ignore[attr-defined]
        after = None
        while True:
            result = await api.run(EVERYTHING, {"r": run_id, "after": after})
            assert result.errors == [], result.errors[:3]
            page = result.data["run"]["tokens"]
            seen += len(page["nodes"])
            for node in page["nodes"]:
                assert node["outcome"] is None or node["outcome"]["path"] is not None or \
                    node["outcome"]["rowOutcome"] == "ROUTED"
                for state in node["nodeStates"]:
                    for call in state["calls"]:
                        assert call["request"]["state"] in ("AVAILABLE", "HASH_ONLY")
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert seen == report.counts["tokens"]  # type: ignore[attr-defined]


async def test_demo_cases_exist_and_resolve(demo: tuple[Api, object]) -> None:
    api, report = demo
    cases = report.tokens  # type: ignore[attr-defined]
    for name in ("forked_parent", "coalesced_multi_parent", "batch_output_child", "validation_error"):
        assert name in cases, sorted(cases)
    data = await api.ok("query ($t: String!) { token(tokenId: $t) { ancestors { edges { kind } } } }",
                        {"t": cases["batch_output_child"]})
    assert "BATCH" in {e["kind"] for e in data["token"]["ancestors"]["edges"]}
    data = await api.ok("query ($t: String!) { token(tokenId: $t) { parents { tokenId } } }",
                        {"t": cases["coalesced_multi_parent"]})
    assert len(data["token"]["parents"]) >= 2


def test_the_cli_writes_a_demo_database(tmp_path: Path) -> None:
    from landscape_graphql.cli import main
    out = tmp_path / "cli.db"
    assert main(["demo", "--out", str(out), "--rows", "20", "--epoch", "2"]) == 0
    assert out.exists() and (tmp_path / "cli.payloads").is_dir()
