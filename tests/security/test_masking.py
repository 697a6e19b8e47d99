"""Error masking: clients see their own mistakes, never our internals."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from graphql import GraphQLError, located_error
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension

from landscape_graphql.error_masking import (
    LOGGER_NAME,
    ErrorMasker,
    MaskingSchema,
    introspection_extensions,
    strip_suggestions,
)
from landscape_graphql.errors import ClientFacingError
from landscape_graphql.limits_extension import QueryLimitsExtension

from ._schema import Query, run

LEAKS = ("SELECT", "secret", "run-7", "RuntimeError", "TypeError", "Traceback", "hunter2", ".py")


def assert_no_leak(payload: object) -> None:
    text = json.dumps(payload)
    for marker in LEAKS:
        assert marker not in text, f"{marker!r} leaked: {text}"


async def test_unexpected_exception_becomes_internal_error_with_logged_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    result, _ = await run(MaskingSchema(query=Query), "{ broken }")
    assert result.errors is not None
    formatted = result.errors[0].formatted
    assert formatted["message"] == "Internal error"
    extensions = formatted["extensions"]
    assert extensions["code"] == "INTERNAL"
    assert re.fullmatch(r"[0-9a-f]{12}", extensions["errorId"])
    assert_no_leak(formatted)
    assert result.errors[0].original_error is None
    records = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert len(records) == 1
    assert extensions["errorId"] in records[0].getMessage()
    assert records[0].exc_info is not None
    assert "SELECT secret" in str(records[0].exc_info[1])


async def test_graphql_core_type_errors_are_masked_too() -> None:
    result, _ = await run(MaskingSchema(query=Query), "{ badNull hello }")
    assert result.errors is not None
    assert result.errors[0].message == "Internal error"
    assert_no_leak(result.errors[0].formatted)


async def test_each_internal_error_gets_its_own_id() -> None:
    result, _ = await run(MaskingSchema(query=Query), "{ a: flaky b: flaky }")
    assert result.errors is not None
    ids = {e.extensions["errorId"] for e in result.errors if e.extensions}
    assert len(ids) == 2


async def test_client_facing_error_keeps_message_code_and_extensions() -> None:
    result, _ = await run(MaskingSchema(query=Query), "{ missing }")
    assert result.errors is not None
    assert result.errors[0].formatted["message"] == "Run not found"
    assert result.errors[0].formatted["extensions"] == {"runId": "run-x", "code": "NOT_FOUND"}


async def test_validation_error_keeps_message_and_suggestions_by_default() -> None:
    result, calls = await run(MaskingSchema(query=Query), "{ helo }")
    assert calls == 0
    assert result.errors is not None
    assert result.errors[0].message == "Cannot query field 'helo' on type 'Query'. Did you mean 'hello'?"
    assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_suggestions_are_stripped_when_hidden() -> None:
    schema = MaskingSchema(query=Query, hide_suggestions=True)
    result, _ = await run(schema, '{ token(tokenId: "t") { tokenID } helo }')
    assert result.errors is not None
    assert [e.message for e in result.errors] == [
        "Cannot query field 'tokenID' on type 'Token'.",
        "Cannot query field 'helo' on type 'Query'.",
    ]


def test_strip_suggestions_handles_lists_and_leaves_other_text() -> None:
    assert (
        strip_suggestions("Unknown argument 'frist'. Did you mean 'first' or 'last'?")
        == "Unknown argument 'frist'."
    )
    assert strip_suggestions("Plain message.") == "Plain message."


async def test_syntax_error_keeps_message() -> None:
    result, _ = await run(MaskingSchema(query=Query), "{ hello")
    assert result.errors is not None
    assert result.errors[0].message == "Syntax Error: Expected Name, found <EOF>."
    assert result.errors[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_variable_coercion_error_keeps_message() -> None:
    query = "query Q($n: Int) { runs(first: $n) { edges { cursor } } }"
    result, calls = await run(MaskingSchema(query=Query), query, {"n": "abc"})
    assert calls == 0
    assert result.errors is not None
    assert (
        result.errors[0].message
        == "Variable '$n' has invalid value: Int cannot represent non-integer value: 'abc'"
    )
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}


async def test_exception_inside_an_extension_is_masked() -> None:
    # Errors raised by extension hooks skip later on_operation hooks, which is
    # why masking lives in process_errors.
    class Exploding(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            raise RuntimeError("connect failed: password=hunter2")
            yield  # pragma: no cover

    schema = MaskingSchema(query=Query, extensions=[Exploding, QueryLimitsExtension.factory()])
    result, calls = await run(schema, "{ hello }")
    assert calls == 0
    assert result.errors is not None
    assert result.errors[0].message == "Internal error"
    assert_no_leak(result.errors[0].formatted)


async def test_query_limit_errors_keep_message_and_code() -> None:
    schema = MaskingSchema(query=Query, extensions=[QueryLimitsExtension.factory()])
    result, _ = await run(schema, "{ runs(first: 501) { edges { cursor } } }")
    assert result.errors is not None
    assert result.errors[0].extensions is not None
    assert result.errors[0].extensions["code"] == "QUERY_LIMIT"


def test_masker_is_idempotent_and_honours_custom_predicate() -> None:
    class Expected(Exception):
        pass

    class Coded(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.extensions = {"code": "RUN_MISMATCH", "recordId": "r1"}

    raw = [
        GraphQLError("boom", original_error=ValueError("SELECT 1"), path=["a"]),
        GraphQLError("fine", original_error=Expected("fine"), path=["b"]),
        located_error(Coded("belongs to another run"), None, ["c"]),
        located_error(GraphQLError("Int cannot represent non-integer value: 'secret'"), None, ["d"]),
    ]
    masker = ErrorMasker(client_facing=lambda e: isinstance(e, Expected | Coded | ClientFacingError))
    masker(raw)
    first = [e.formatted for e in raw]
    masker(raw)
    assert [e.formatted for e in raw] == first
    assert first[0]["message"] == "Internal error"
    assert first[1]["message"] == "fine"
    assert first[1]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert first[2]["message"] == "belongs to another run"
    assert first[2]["extensions"] == {"code": "RUN_MISMATCH", "recordId": "r1"}
    # A GraphQLError raised during execution (here a serialisation failure that
    # quotes a stored value) is a server fault, not a client mistake.
    assert first[3]["message"] == "Internal error"


async def test_introspection_can_be_disabled_but_typename_stays() -> None:
    schema = MaskingSchema(query=Query, extensions=introspection_extensions(False), hide_suggestions=True)
    refused, _ = await run(schema, "{ __schema { queryType { name } } }")
    assert refused.errors is not None
    assert "introspection has been disabled" in refused.errors[0].message
    single, _ = await run(schema, '{ __type(name: "Run") { name } }')
    assert single.errors is not None
    allowed, _ = await run(schema, "{ __typename }")
    assert allowed.errors is None
    assert allowed.data == {"__typename": "Query"}
    assert introspection_extensions(True) == []


async def test_http_response_never_carries_internals(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)

    class App(GraphQL[dict[str, int], None]):
        async def get_context(self, request: object, response: object) -> dict[str, int]:
            return {"calls": 0}

    app = App(MaskingSchema(query=Query), graphql_ide=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        responses = [await client.post("/", json={"query": q}) for q in ("{ broken }", "{ hello flaky }")]
    bodies = [r.json() for r in responses]
    assert bodies[0]["data"] is None
    assert bodies[1]["data"] == {"hello": "hello", "flaky": None}
    assert [e["message"] for b in bodies for e in b["errors"]] == ["Internal error", "Internal error"]
    assert_no_leak(bodies)
    # Strawberry's own per-error logging is replaced, not duplicated.
    assert not [r for r in caplog.records if r.name.startswith("strawberry")]
