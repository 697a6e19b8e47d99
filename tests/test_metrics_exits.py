"""Every way out of the GraphQL handler is counted in /metrics, not only executed queries (issue 9)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx

from landscape_graphql.app import AppConfig, create_app
from tests.conftest import FIXTURES


def _count(text: str, status: str, code: str) -> tuple[float, float]:
    requests = sum(float(v) for v in re.findall(
        rf'^landscape_graphql_requests_total\{{operation_type="query",status="{status}"\}} (\S+)$', text, re.M))
    errors = re.findall(rf'^landscape_graphql_errors_total\{{code="{code}"\}} (\S+)$', text, re.M)
    return requests, float(errors[0]) if errors else 0.0


async def test_unknown_operation_and_a_vanished_database_are_counted(tmp_path: Path) -> None:
    db = tmp_path / "landscape.db"
    shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", db)
    app = create_app(AppConfig(database=str(db), graphiql=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = (await client.post("/graphql", json={"query": "query A { landscape { epoch } }",
                                                       "operationName": "B"})).json()
        assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        text = (await client.get("/metrics")).text
        assert _count(text, "rejected", "GRAPHQL_VALIDATION_FAILED") == (1.0, 1.0)

        db.unlink()
        answer = (await client.post("/graphql", json={"query": "query { landscape { epoch } }"})).json()
        assert answer["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        text = (await client.get("/metrics")).text
        assert _count(text, "error", "DATABASE_UNAVAILABLE") == (1.0, 1.0)
