"""Shared test fixtures: real ELSPETH fixture databases, copied, opened read-only.

The fixture files are never opened in place (WAL mode would leave -wal/-shm files beside them);
their bytes are hashed when the session starts and checked again at its end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import AsyncIterator, Iterator
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
        from landscape_graphql.graphql_errors import format_errors
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


@pytest.fixture(scope="session")
async def landscapes(fixture_copies: Path) -> AsyncIterator[dict[tuple[int, str], Landscape]]:
    opened: dict[tuple[int, str], Landscape] = {}
    for epoch, name in sorted(SQLITE_FIXTURES):
        opened[(epoch, name)] = await open_landscape(str(fixture_copies / f"epoch{epoch}" / f"{name}.db"))
    yield opened
    for landscape in opened.values():
        await landscape.dispose()


@pytest.fixture(scope="session")
def apis(landscapes: dict[tuple[int, str], Landscape]) -> Iterator[dict[tuple[int, str], Api]]:
    made = {key: Api(ls, payload_roots=(payload_dir(*key),)) for key, ls in landscapes.items()}
    yield made
    for api in made.values():
        api.counter.close()
