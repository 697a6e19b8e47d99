"""Authentication and run scoping through the real app, over real HTTP.

A caller scoped to one run of the 12-run fixture must see nothing of the other runs through any
path: run, runs and totalCount, token, row, explain, node(id:), calls, lineage walks and paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.auth import TokenStore, build_authenticator, hash_token
from landscape_graphql.schema.relay import to_global_id
from tests.conftest import truth
from tests.live_server import serve

RUNS = truth(2, "examples-multirun")["runs"]
MINE, OTHER = RUNS[5], RUNS[6]  # two fork/coalesce runs
SCOPED, FULL = "scoped-token-xyz", "full-token-abc"


@pytest.fixture(scope="module")
def base_url(fixture_copies: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = tmp_path_factory.mktemp("auth") / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "auditor", "sha256": hash_token(SCOPED), "runs": [MINE["run_id"]]},
        {"name": "ops", "sha256": hash_token(FULL)},
    ]}))
    TokenStore.from_file(tokens)  # the file must be valid
    app = create_app(AppConfig(database=str(fixture_copies / "epoch2" / "examples-multirun.db"),
                               authenticator=build_authenticator(tokens_file=tokens)))
    with serve(app) as url:
        yield url


def _post(url: str, token: str | None, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def test_no_or_wrong_credentials_are_refused(base_url: str) -> None:
    for token in (None, "not-a-known-token"):
        response = _post(base_url, token, "{ runs { totalCount } }")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "data" not in response.json()


def test_token_in_a_cookie_or_query_string_does_not_count(base_url: str) -> None:
    response = httpx.post(f"{base_url}/graphql?access_token={FULL}", json={"query": "{ runs { totalCount } }"},
                          cookies={"Authorization": f"Bearer {FULL}"})
    assert response.status_code == 401


def test_full_token_sees_every_run(base_url: str) -> None:
    body = _post(base_url, FULL, "{ runs(first: 50) { totalCount } }").json()
    assert body["data"]["runs"]["totalCount"] == len(RUNS)


def test_scoped_token_sees_only_its_run_through_every_path(base_url: str) -> None:
    other_case = OTHER["cases"]["forked_parent"]
    mine_case = MINE["cases"]["forked_parent"]
    query = """query ($mine: String!, $other: String!, $otherToken: String!, $otherRow: String!,
                      $otherNode: ID!, $mineToken: String!) {
      runs(first: 50) { totalCount nodes { runId } }
      otherRun: run(runId: $other) { runId }
      mineRun: run(runId: $mine) { runId }
      otherToken: token(tokenId: $otherToken) { tokenId }
      otherRow: row(rowId: $otherRow) { rowId }
      otherExplain: explain(runId: $other, tokenId: $otherToken) { token { tokenId } }
      otherNode: node(id: $otherNode) { id }
      path: lineagePath(fromTokenId: $otherToken, toTokenId: $mineToken) { tokens { tokenId } }
      mine: token(tokenId: $mineToken) { descendants { tokens { runId } } }
    }"""
    body = _post(base_url, SCOPED, query, {
        "mine": MINE["run_id"], "other": OTHER["run_id"], "otherToken": other_case["token_id"],
        "otherRow": other_case["row_id"], "otherNode": to_global_id("Token", other_case["token_id"]),
        "mineToken": mine_case["token_id"]}).json()
    data = body["data"]
    assert data["runs"] == {"totalCount": 1, "nodes": [{"runId": MINE["run_id"]}]}
    assert data["mineRun"] == {"runId": MINE["run_id"]}
    for hidden in ("otherRun", "otherToken", "otherRow", "otherExplain", "otherNode", "path"):
        assert data[hidden] is None, hidden
    assert {t["runId"] for t in data["mine"]["descendants"]["tokens"]} == {MINE["run_id"]}
    assert "errors" not in body  # hidden, not "forbidden": existence does not leak


def test_metrics_need_credentials_and_carry_no_ids(base_url: str) -> None:
    assert httpx.get(f"{base_url}/metrics").status_code == 401
    _post(base_url, FULL, "{ runs { totalCount } }")
    text = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {FULL}"}).text
    assert "landscape_graphql_requests_total" in text
    for run in RUNS:
        assert run["run_id"] not in text
    assert "auditor" not in text and "ops" not in text


def test_health_probes_need_no_credentials(base_url: str) -> None:
    assert httpx.get(f"{base_url}/livez").status_code == 200
    assert httpx.get(f"{base_url}/readyz").status_code == 200


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b"{not json"),
    ("text/plain", b'{"query": "{ runs { totalCount } }"}'),
    ("application/json", b"[]"),
    ("application/json", b'{"query": 1}'),
])
def test_credentials_are_checked_before_the_body_is_read(base_url: str, content_type: str, body: bytes) -> None:
    response = httpx.post(f"{base_url}/graphql", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    # ... and an authenticated caller then gets the request's own error.
    response = httpx.post(f"{base_url}/graphql", content=body,
                          headers={"Content-Type": content_type, "Authorization": f"Bearer {FULL}"})
    assert response.status_code in (400, 415)


def test_an_oversized_body_of_an_unauthenticated_caller_gets_401(base_url: str) -> None:
    response = httpx.post(f"{base_url}/graphql", content=b"x" * (2 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401
