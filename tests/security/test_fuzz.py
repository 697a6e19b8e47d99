"""Schemathesis GraphQL fuzzing of the real app over one of ELSPETH's own databases.

Queries come from schemathesis (hypothesis-graphql underneath), generated from the app's own
introspection and sent in-process through schemathesis' ASGI transport, which runs the app's
lifespan like a server would. String and ID arguments draw half the time from the database's
real ids, so lookups find records and the resolvers, loaders and payload reads below them run
(pure random ids would mostly answer null). Negative-mode queries break the schema on purpose.

Every response is checked, none raises inside the generator: all violations are collected and
reported together, each with its exact query. Generation is derandomized, so a run is repeatable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.error_masking import INTERNAL_MESSAGE, LOGGER_NAME
from landscape_graphql.schema.relay import to_global_id
from tests.conftest import FIXTURES, payload_dir

# README "Errors", plus the codes of the client's own document and input. INTERNAL is a bug.
DOCUMENTED_CODES = frozenset({
    "BAD_ARGUMENT", "RUN_MISMATCH", "AMBIGUOUS_LINEAGE", "AUDIT_INTEGRITY",
    "DATABASE_BUSY", "DATABASE_UNAVAILABLE", "TIMEOUT",
    "QUERY_LIMIT", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT",
})
EXAMPLES = {GenerationMode.POSITIVE: 240, GenerationMode.NEGATIVE: 60}

# What a client must never see in an error message.
_LEAKS = {
    "traceback": re.compile(r"Traceback|File \"|line \d+, in "),
    "SQL": re.compile(r"\bSELECT |\bFROM \w|\bWHERE |\[SQL:|sqlite3|sqlalchemy|aiosqlite|asyncpg|"
                      r"\(Background on this error"),
    "file path": re.compile(r"(?:/[\w.-]+){2,}|\w+\.py\b|site-packages"),
    "Python object": re.compile(r"<class '|object at 0x|<coroutine"),
}
# Exception class names; the schema's own types ending in Error (ValidationError...) are allowed.
_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Warning)\b")


@dataclass
class Report:
    """What the fuzzing saw, per generation mode, and every violation with its query."""

    tried: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    executed: Counter[str] = field(default_factory=Counter)  # answered data with no error at all
    found: Counter[str] = field(default_factory=Counter)  # a lookup by id returned a record
    failures: list[tuple[str, str]] = field(default_factory=list)  # (problem, query)


@dataclass
class Target:
    schema: Any  # schemathesis.specs.graphql.schemas.GraphQLSchema
    type_names: frozenset[str]
    internal_causes: dict[str, str]  # errorId -> the message logged with it
    ids: dict[str, list[str]]


# Argument name -> the kind of id it takes (keys of _real_ids).
ID_ARGUMENTS = {
    "runId": "run", "tokenId": "token", "fromTokenId": "token", "toTokenId": "token",
    "tokenIds[*]": "token", "rowId": "row", "stateId": "state", "callId": "call",
    "operationId": "operation", "sink": "sink", "id": "global", "ids[*]": "global",
}


class _InternalErrorLog(logging.Handler):
    """Keeps what the server logged for each errorId: the cause of an INTERNAL error."""

    def __init__(self, into: dict[str, str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and record.args:
            self.into[str(record.args[0])] = record.getMessage()


def _real_ids(db: Path) -> dict[str, list[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        def column(sql: str) -> list[str]:
            return [str(r[0]) for r in conn.execute(sql)]
        ids = {
            "run": column("SELECT run_id FROM runs"),
            # Tokens from every part of the DAG: fork parents, children, coalesced and failed ones.
            "token": column("SELECT token_id FROM token_outcomes GROUP BY outcome, path "
                            "UNION SELECT token_id FROM (SELECT token_id FROM tokens ORDER BY token_id LIMIT 12)"),
            "row": column("SELECT row_id FROM rows ORDER BY row_id LIMIT 8"),
            "state": column("SELECT state_id FROM node_states GROUP BY status "
                            "UNION SELECT state_id FROM (SELECT state_id FROM node_states ORDER BY state_id LIMIT 4)"),
            "call": column("SELECT call_id FROM calls ORDER BY call_id LIMIT 4"),
            "operation": column("SELECT operation_id FROM operations ORDER BY operation_id LIMIT 3"),
            "node": column("SELECT node_id FROM nodes ORDER BY node_id LIMIT 6"),
            "sink": column("SELECT DISTINCT sink_name FROM token_outcomes WHERE sink_name IS NOT NULL"),
        }
    conn.close()
    run = ids["run"][0]
    ids["global"] = [str(to_global_id(kind, key)) for kind, key in (
        ("Run", run), *(("Token", t) for t in ids["token"][:4]),
        *(("NodeState", s) for s in ids["state"][:2]), *(("Row", r) for r in ids["row"][:2]))]
    return ids


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    db = tmp_path_factory.mktemp("fuzz") / "fork-coalesce.db"
    shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", db)
    ids = _real_ids(db)
    app = create_app(AppConfig(database=str(db), payload_roots=(str(payload_dir(29, "fork-coalesce")),)))
    config = SchemathesisConfig.from_dict({
        "dictionaries": {
            "any": {"values": sorted({v for values in ids.values() for v in values})},
            **{kind: {"values": values} for kind, values in ids.items()},
        },
        # Each id argument draws from its own kind, at any depth; `*` is any type or field.
        "parameters": {f"*.*.{argument}": {"dictionary": kind, "probability": 0.7}
                       for argument, kind in ID_ARGUMENTS.items()},
        # Every other String or ID argument (cursors, filters...) sometimes gets a real id too.
        "generation": {"dictionaries": {"string": {"dictionary": "any", "probability": 0.3}}},
    })
    causes: dict[str, str] = {}
    handler = _InternalErrorLog(causes)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        schema = schemathesis.graphql.from_asgi("/graphql", app, config=config)
        type_names = frozenset(schema.client_schema.type_map)
        yield Target(schema, type_names, causes, ids)
    finally:
        logger.removeHandler(handler)
        asgi.shutdown_lifespans()  # the app's lifespan: disposes of its database engine


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    collected = Report()
    yield collected
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"fuzz {mode}: {collected.tried[mode]} queries, {collected.executed[mode]} answered without "
             f"error, {collected.found[mode]} found a record by id" for mode in collected.tried]
    lines.append(f"fuzz: HTTP statuses {dict(collected.statuses)}, error codes {dict(collected.codes)}, "

                 f"{len(collected.failures)} failures")
    # Past pytest's output capture, so that the counts show in every run, not only on failure.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for line in lines:
            if terminal is not None:
                terminal.write_line(line)


def check(status: int, content: bytes, query: str, mode: str, target: Target, report: Report) -> None:
    report.tried[mode] += 1
    report.statuses[status] += 1

    def fail(problem: str) -> None:
        report.failures.append((problem, query))

    if status >= 500:
        fail(f"HTTP {status}")
    try:
        body = json.loads(content)
    except ValueError:
        fail(f"HTTP {status} body is not JSON: {content[:200]!r}")
        return
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        fail(f"not a GraphQL response: {content[:200]!r}")
        return
    errors = body.get("errors") or []
    data = body.get("data")
    if isinstance(data, dict):
        if not errors:
            report.executed[mode] += 1
        if any(value is not None for key, value in data.items() if key not in ("landscape", "runs")):
            report.found[mode] += 1
    for error in errors:
        message = str(error.get("message"))
        code = (error.get("extensions") or {}).get("code")
        report.codes[str(code)] += 1
        for kind, pattern in _LEAKS.items():
            if pattern.search(message):
                fail(f"{kind} in an error message: {message}")
        leaked = set(_EXCEPTION_NAME.findall(message)) - target.type_names
        if leaked:
            fail(f"exception name {sorted(leaked)} in an error message: {message}")
        if code == "INTERNAL":
            assert message == INTERNAL_MESSAGE, message
            cause = target.internal_causes.get(str(error["extensions"].get("errorId")), "(not logged)")
            fail(f"INTERNAL at {error.get('path')}; server log: {cause}")
        elif code not in DOCUMENTED_CODES:
            fail(f"undocumented code {code!r}: {message}")


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
def test_fuzzed_queries_get_well_formed_masked_answers(mode: GenerationMode, target: Target,
                                                       report: Report) -> None:
    strategy = target.schema.as_strategy(generation_mode=mode)
    name = str(mode)

    # No shrinking phase: nothing raises inside, every violation is kept with its query instead.
    @settings(max_examples=EXAMPLES[mode], derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = case.call()
        check(response.status_code, response.content, str(case.body), name, target, report)

    before = len(report.failures)
    fuzz()
    failures = report.failures[before:]
    assert not failures, f"{len(failures)} of {report.tried[name]} queries failed; first ones:\n" + "\n\n".join(
        f"{problem}\n{query}" for problem, query in failures[:8])
    assert report.tried[name] >= 0.9 * EXAMPLES[mode], report.tried
    if mode is GenerationMode.POSITIVE:
        # The fuzzing reached the resolvers, not only the validation: guards the id dictionary.
        assert report.executed[name] >= 0.3 * report.tried[name], report
        assert report.found[name] >= 0.15 * report.tried[name], report
    else:
        assert report.codes["GRAPHQL_VALIDATION_FAILED"] + report.codes["BAD_USER_INPUT"] > 0, report


def test_the_checks_catch_each_violation() -> None:
    # The fuzzing above passes when nothing is wrong; this shows it would notice if something were.
    target = Target(schema=None, type_names=frozenset({"ValidationError", "Token"}),
                    internal_causes={"a1": "Internal error a1 at path x: Cannot return null for "
                                           "non-nullable field Call.error.",
                                     "b2": "Internal error b2 at path y: boom"}, ids={})

    def errors(*items: tuple[str, dict[str, Any]]) -> bytes:
        return json.dumps({"data": None, "errors": [
            {"message": message, "extensions": extensions} for message, extensions in items]}).encode()

    bad = {
        "5xx": (500, b'{"errors": []}'),
        "not JSON": (200, b"<html>oops</html>"),
        "not GraphQL": (200, b'{"detail": "x"}'),
        "SQL": (200, errors(("near SELECT token_id FROM tokens: syntax error", {"code": "BAD_ARGUMENT"}))),
        "path": (200, errors(("cannot open /srv/elspeth/audit.db", {"code": "BAD_ARGUMENT"}))),
        "traceback": (200, errors(('Traceback (most recent call last):\n  File "x"', {"code": "BAD_ARGUMENT"}))),
        "exception": (200, errors(("KeyError: 'token_id'", {"code": "BAD_ARGUMENT"}))),
        "code": (200, errors(("no such thing", {"code": "NOT_FOUND"}))),
        "no code": (200, errors(("no such thing", {}))),
        "internal": (200, errors(("Internal error", {"code": "INTERNAL", "errorId": "b2"}))),
    }
    for name, (status, content) in bad.items():
        report = Report()
        check(status, content, f"query for {name}", "positive", target, report)
        assert report.failures, f"{name} went unnoticed"
        assert all(query == f"query for {name}" for _, query in report.failures)

    report = Report()
    check(200, errors(("Fragment cannot be spread here as objects of type 'ValidationError' can never be "
                       "of type 'Token'.", {"code": "GRAPHQL_VALIDATION_FAILED"}),
                      ("Internal error", {"code": "INTERNAL", "errorId": "a1"})),
          "query", "positive", target, report)
    assert len(report.failures) == 1 and "INTERNAL" in report.failures[0][0]
    check(200, b'{"data": {"token": {"tokenId": "t"}}}', "query", "positive", target, report)
    assert (report.executed["positive"], report.found["positive"], report.tried["positive"]) == (1, 1, 2)


def test_nullable_json_columns_answer_null(target: Target) -> None:
    ids = target.ids
    query = (f'{{ nodeState(stateId: "{ids["state"][0]}") {{ contextBefore contextAfter error successReason }} '
             f'call(callId: "{ids["call"][0]}") {{ error }} '
             f'token(tokenId: "{ids["token"][0]}") {{ outcome {{ context expectedBranches }} }} }}')
    with asgi.get_client(target.schema.app) as client:
        body = client.post("/graphql", json={"query": query}).json()
    assert "errors" not in body, body["errors"]
