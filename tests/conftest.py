"""Shared test fixtures: real ELSPETH fixture databases, copied, opened read-only.

The fixture files are never opened in place (WAL mode would leave -wal/-shm files beside them);
their bytes are hashed when the session starts and checked again at its end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from landscape_graphql.context import Context
from landscape_graphql.db.engine import Landscape, open_landscape
from landscape_graphql.schema import build_schema
from landscape_graphql.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SQLITE_FIXTURES = {
    (2, "fork-coalesce"), (2, "expand-aggregate"), (2, "llm-calls"), (2, "examples-multirun"),
    (29, "fork-coalesce"), (29, "expand-aggregate"), (29, "llm-calls"),
}


def fixture_digests() -> dict[str, str]:
    return {str(p.relative_to(FIXTURES)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(FIXTURES.rglob("*")) if p.is_file()}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[DIGESTS] = fixture_digests()


DIGESTS = pytest.StashKey[dict[str, str]]()


def truth(epoch: int, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"epoch{epoch}" / "truth" / f"{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def fixture_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of every fixture database and payload store for the whole session."""
    root = tmp_path_factory.mktemp("fixtures")
    for epoch, name in SQLITE_FIXTURES:
        dest = root / f"epoch{epoch}"
        dest.mkdir(exist_ok=True)
        shutil.copy2(FIXTURES / f"epoch{epoch}" / f"{name}.db", dest / f"{name}.db")
    return root


def payload_dir(epoch: int, name: str) -> Path:
    return FIXTURES / f"epoch{epoch}" / f"{name}.payloads"


class StatementCounter:
    """Counts SQL statements with a before_cursor_execute listener on the engine."""

    def __init__(self, landscape: Landscape) -> None:
        self.count = 0
        self.statements: list[str] = []
        self._engine = landscape.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.statements.clear()

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_execute)


@dataclass
class Result:
    data: Any
    errors: list[dict[str, Any]]
    statements: int
    cost: dict[str, Any]


class Api:
    """Runs GraphQL in-process against one Landscape, counting real SQL statements."""

    def __init__(self, landscape: Landscape, settings: Settings | None = None,
                 payload_roots: tuple[Path, ...] = ()) -> None:
        self.landscape = landscape
        self.settings = settings or Settings()
        self.schema = build_schema(self.settings)
        self.counter = StatementCounter(landscape)
        self.payload_roots = payload_roots

    async def run(self, query: str, variables: dict[str, Any] | None = None, **ctx: Any) -> Result:
        from landscape_graphql.error_masking import format_errors
        extra: dict[str, Any] = {}
        if self.payload_roots:
            from landscape_graphql.payloads import ByteBudget, PayloadStore
            extra = {"payload_store": PayloadStore(self.payload_roots), "payload_budget": ByteBudget()}
        context = Context.create(self.landscape, self.settings, **extra, **ctx)
        self.counter.reset()
        result = await self.schema.execute(query, variable_values=variables, context_value=context)
        errors = format_errors(result.errors or [])
        assert context.db.statements == self.counter.count, "the cost report must match the SQL sent"
        return Result(result.data, errors, self.counter.count, context.db.cost())

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **ctx: Any) -> Any:
        result = await self.run(query, variables, **ctx)
        assert not result.errors, result.errors
        return result.data


PG_DUMP = (29, "pg-fork-coalesce")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One throwaway PostgreSQL cluster for the session (started on first use)."""
    from tests._pgcluster import PgCluster
    cluster = PgCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_databases(pg_cluster: Any, fixture_copies: Path) -> dict[tuple[int, str], str]:
    """Every SQLite fixture copied into PostgreSQL by the project's loader, plus ELSPETH's own
    PostgreSQL dump: key -> SQLAlchemy URL."""
    from landscape_graphql.db.pgload import load_sqlite_into_postgres
    urls: dict[tuple[int, str], str] = {}
    for epoch, name in sorted(SQLITE_FIXTURES):
        urls[(epoch, name)] = pg_cluster.create_database(f"e{epoch}_{name.replace('-', '_')}")

    async def load_all() -> None:
        for key in sorted(SQLITE_FIXTURES):
            await load_sqlite_into_postgres(fixture_copies / f"epoch{key[0]}" / f"{key[1]}.db", urls[key])

    # Its own loop, in its own thread: this fixture may be first asked for from inside the
    # session's running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, load_all()).result()
    urls[PG_DUMP] = pg_cluster.create_database("elspeth_pg_dump")
    pg_cluster.restore_dump(FIXTURES / "epoch29" / "pg-fork-coalesce.sql", "elspeth_pg_dump")
    return urls


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The API suites run once per backend: the same tests, the same fixtures."""
    return str(request.param)


@pytest.fixture(scope="session")
async def landscapes(backend: str, fixture_copies: Path,
                     request: pytest.FixtureRequest) -> AsyncIterator[dict[tuple[int, str], Landscape]]:
    if backend == "sqlite":
        targets = {key: str(fixture_copies / f"epoch{key[0]}" / f"{key[1]}.db") for key in SQLITE_FIXTURES}
    else:
        targets = dict(request.getfixturevalue("pg_databases"))
    opened: dict[tuple[int, str], Landscape] = {}
    for key in sorted(targets):
        opened[key] = await open_landscape(targets[key])
    yield opened
    for landscape in opened.values():
        await landscape.dispose()


@pytest.fixture(scope="session")
def apis(landscapes: dict[tuple[int, str], Landscape]) -> Iterator[dict[tuple[int, str], Api]]:
    made = {key: Api(ls, payload_roots=(payload_dir(*key),)) for key, ls in landscapes.items()}
    yield made
    for api in made.values():
        api.counter.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """ELSPETH's PostgreSQL dump has no SQLite form: its cases run on the PostgreSQL backend only."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("backend") == "sqlite" and PG_DUMP[1] in item.name:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
