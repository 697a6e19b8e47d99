"""schema.graphql at the repository root is exactly what `landscape-graphql schema` prints."""

from __future__ import annotations

from pathlib import Path

from landscape_graphql.cli import main
from landscape_graphql.schema import sdl

ROOT = Path(__file__).parent.parent


def test_checked_in_sdl_is_current() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()
    assert checked_in == sdl(), "schema.graphql is stale: run `landscape-graphql schema > schema.graphql`"


def test_schema_command_prints_the_sdl(capsys: object) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out == sdl()
    assert "type Token implements Node" in out
    assert "explain(runId: String!, tokenId: String = null, rowId: String = null, sink: String = null): Explanation" in out
