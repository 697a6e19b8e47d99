"""A small stand-in of the lineage API: the field names the web pages use, over one row whose
lineage has every edge kind (FORK, COALESCE, EXPAND, BATCH).

The pages are tested against this so that they can be developed alongside the real schema;
`tests/web/_server.py` builds the app in one place so that it can be switched to the real one.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.exceptions import CannotGetOperationTypeError


def tid(name: str) -> str:
    """A 32-hex id like ELSPETH's uuid4 hex, stable across runs of the tests."""
    return hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()


RUN_ID = tid("run")
ROW_ID = tid("row-1")

# source → fork(3) → coalesce → expand(2) → each item batched with an item of another row
SOURCE = tid("source")
BRANCHES = {"sentiment": tid("b-sentiment"), "language": tid("b-language"), "length": tid("b-length")}
MERGED = tid("merged")
ITEMS = [tid("item-0"), tid("item-1")]
OTHER_ROW_ITEM = tid("other-item")
OUTPUTS = [tid("out-0"), tid("out-1")]
MISSING = tid("nobody")
BROKEN = "not-a-token-id"

EDGES: list[tuple[str, str, str, int]] = [
    *[(SOURCE, b, "FORK", 0) for b in BRANCHES.values()],
    *[(b, MERGED, "COALESCE", i) for i, b in enumerate(BRANCHES.values())],
    *[(MERGED, item, "EXPAND", i) for i, item in enumerate(ITEMS)],
    (ITEMS[0], OUTPUTS[0], "BATCH", 0), (OTHER_ROW_ITEM, OUTPUTS[0], "BATCH", 1),
    (ITEMS[1], OUTPUTS[1], "BATCH", 0),
]


@strawberry.enum
class EdgeKind(Enum):
    FORK = "FORK"
    COALESCE = "COALESCE"
    EXPAND = "EXPAND"
    BATCH = "BATCH"


@strawberry.enum
class NodeStateStatus(Enum):
    OPEN = "OPEN"
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@strawberry.enum
class TerminalResult(Enum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    TRANSIENT = "TRANSIENT"


@strawberry.enum
class TerminalPath(Enum):
    FORKED = "FORKED"
    COALESCED = "COALESCED"
    EXPANDED = "EXPANDED"
    BATCH_CONSUMED = "BATCH_CONSUMED"
    SINK_WRITTEN = "SINK_WRITTEN"
    ON_ERROR_ROUTED = "ON_ERROR_ROUTED"


@strawberry.enum
class CallType(Enum):
    HTTP = "HTTP"
    LLM = "LLM"


@strawberry.enum
class CallStatus(Enum):
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


@strawberry.enum
class RunStatus(Enum):
    COMPLETED = "COMPLETED"


@strawberry.type
class Outcome:
    terminal: bool
    result: TerminalResult | None
    path: TerminalPath
    row_outcome: str | None
    sink_name: str | None


@strawberry.type
class NodeState:
    state_id: str
    step_index: int
    attempt: int
    status: NodeStateStatus
    node_id: str


@strawberry.type
class Call:
    call_id: str
    call_type: CallType
    status: CallStatus


@strawberry.type
class LineageEdge:
    parent_token_id: str
    child_token_id: str
    kind: EdgeKind
    ordinal: int


@strawberry.type
class Lineage:
    tokens: list[Token]
    edges: list[LineageEdge]
    depth_reached: int
    truncated: bool
    truncation_reason: str | None


def _outcome(token_id: str) -> Outcome | None:
    if token_id == SOURCE:
        return Outcome(terminal=True, result=TerminalResult.SUCCESS, path=TerminalPath.FORKED,
                       row_outcome=None, sink_name=None)
    if token_id in BRANCHES.values():
        return Outcome(terminal=True, result=TerminalResult.SUCCESS, path=TerminalPath.COALESCED,
                       row_outcome=None, sink_name=None)
    if token_id == MERGED:
        return Outcome(terminal=True, result=TerminalResult.SUCCESS, path=TerminalPath.EXPANDED,
                       row_outcome=None, sink_name=None)
    if token_id in ITEMS or token_id == OTHER_ROW_ITEM:
        return Outcome(terminal=True, result=TerminalResult.SUCCESS, path=TerminalPath.BATCH_CONSUMED,
                       row_outcome=None, sink_name=None)
    if token_id == OUTPUTS[0]:
        return Outcome(terminal=True, result=TerminalResult.SUCCESS, path=TerminalPath.SINK_WRITTEN,
                       row_outcome=None, sink_name="high_value")
    if token_id == OUTPUTS[1]:
        return Outcome(terminal=True, result=TerminalResult.FAILURE, path=TerminalPath.ON_ERROR_ROUTED,
                       row_outcome=None, sink_name="errors")
    return None


def _walk(start: str, up: bool, max_depth: int | None) -> Lineage:
    """Breadth-first over EDGES, as the real resolver bounds it: depth first, then a cut."""
    limit = 10 if max_depth is None else max_depth
    seen = {start}
    edges: list[LineageEdge] = []
    frontier = deque([(start, 0)])
    reached = 0
    truncated = False
    while frontier:
        current, depth = frontier.popleft()
        nexts = [(p, c, k, o) for p, c, k, o in EDGES if (c if up else p) == current]
        if nexts and depth == limit:
            truncated = True
            continue
        for parent, child, kind, ordinal in nexts:
            edges.append(LineageEdge(parent_token_id=parent, child_token_id=child,
                                     kind=EdgeKind(kind), ordinal=ordinal))
            other = parent if up else child
            reached = max(reached, depth + 1)
            if other not in seen:
                seen.add(other)
                frontier.append((other, depth + 1))
    tokens = [Token(token_id=t) for t in sorted(seen - {start})]
    return Lineage(tokens=tokens, edges=edges, depth_reached=reached, truncated=truncated,
                   truncation_reason="MAX_DEPTH" if truncated else None)


@strawberry.type
class Token:
    token_id: str

    @strawberry.field
    def row_id(self) -> str:
        return tid("row-2") if self.token_id == OTHER_ROW_ITEM else ROW_ID

    @strawberry.field
    def run_id(self) -> str:
        return RUN_ID

    @strawberry.field
    def branch_name(self) -> str | None:
        return next((name for name, t in BRANCHES.items() if t == self.token_id), None)

    @strawberry.field
    def parents(self) -> list[Token]:
        return [Token(token_id=p) for p, c, _k, _o in EDGES if c == self.token_id]

    @strawberry.field
    def children(self) -> list[Token]:
        return [Token(token_id=c) for p, c, _k, _o in EDGES if p == self.token_id]

    @strawberry.field
    def node_states(self) -> list[NodeState]:
        states = [
            NodeState(state_id=tid(f"{self.token_id}-s0"), step_index=0, attempt=1,
                      status=NodeStateStatus.COMPLETED, node_id="csv_source"),
            NodeState(state_id=tid(f"{self.token_id}-s1"), step_index=1, attempt=1,
                      status=NodeStateStatus.FAILED, node_id="llm_classify"),
            NodeState(state_id=tid(f"{self.token_id}-s2"), step_index=1, attempt=2,
                      status=NodeStateStatus.COMPLETED, node_id="llm_classify"),
        ]
        return states if self.token_id == MERGED else states[:1]

    @strawberry.field
    def calls(self) -> list[Call]:
        if self.token_id != MERGED:
            return []
        return [Call(call_id=tid("call-1"), call_type=CallType.HTTP, status=CallStatus.ERROR),
                Call(call_id=tid("call-2"), call_type=CallType.HTTP, status=CallStatus.SUCCESS),
                Call(call_id=tid("call-3"), call_type=CallType.LLM, status=CallStatus.SUCCESS)]

    @strawberry.field
    def outcome(self) -> Outcome | None:
        return _outcome(self.token_id)

    @strawberry.field
    def ancestors(self, max_depth: int | None = None) -> Lineage:
        return _walk(self.token_id, up=True, max_depth=max_depth)

    @strawberry.field
    def descendants(self, max_depth: int | None = None) -> Lineage:
        return _walk(self.token_id, up=False, max_depth=max_depth)


ALL_TOKENS = [SOURCE, *BRANCHES.values(), MERGED, *ITEMS, OTHER_ROW_ITEM, *OUTPUTS]


@strawberry.type
class Explanation:
    token: Token


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class TokenEdge:
    cursor: str
    node: Token


@strawberry.type
class TokenConnection:
    total_count: int
    page_info: PageInfo
    edges: list[TokenEdge]


def _cursor(i: int) -> str:
    return base64.urlsafe_b64encode(f"t:{i}".encode()).decode()


@strawberry.type
class Run:
    run_id: str
    status: RunStatus

    @strawberry.field
    def tokens(self, first: int = 50, after: str | None = None) -> TokenConnection:
        start = 0 if after is None else int(base64.urlsafe_b64decode(after).decode()[2:]) + 1
        page = list(enumerate(ALL_TOKENS))[start:start + first]
        return TokenConnection(
            total_count=len(ALL_TOKENS),
            page_info=PageInfo(has_next_page=start + first < len(ALL_TOKENS),
                               end_cursor=_cursor(page[-1][0]) if page else None),
            edges=[TokenEdge(cursor=_cursor(i), node=Token(token_id=t)) for i, t in page],
        )


@strawberry.type
class LandscapeInfo:
    epoch: int
    backend: str
    elspeth_version: str | None


@dataclass
class Seen:
    """What the stand-in was sent, so a test can check what a page really transmitted."""

    authorization: list[str | None] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field
    def landscape(self) -> LandscapeInfo:
        return LandscapeInfo(epoch=29, backend="sqlite", elspeth_version="0.7.1")

    @strawberry.field
    def token(self, token_id: str) -> Token | None:
        if token_id == BROKEN:
            raise GraphQLError("Argument 'tokenId': not a token id (32 hex characters)",
                               extensions={"code": "BAD_ARGUMENT", "argument": "tokenId"})
        return Token(token_id=token_id) if token_id in ALL_TOKENS else None

    @strawberry.field
    def explain(self, run_id: str, row_id: str | None = None, token_id: str | None = None,
                sink: str | None = None) -> Explanation:
        if run_id != RUN_ID:
            raise GraphQLError(f"No run {run_id}", extensions={"code": "NOT_FOUND"})
        if token_id is not None:
            return Explanation(token=Token(token_id=token_id))
        if row_id != ROW_ID:
            raise GraphQLError(f"No row {row_id} in run {run_id}", extensions={"code": "NOT_FOUND"})
        terminal = {"high_value": OUTPUTS[0], "errors": OUTPUTS[1]}
        if sink is None:
            raise GraphQLError(
                f"Row {row_id} has {len(OUTPUTS)} terminal tokens; name a sink",
                extensions={"code": "AMBIGUOUS_LINEAGE", "candidateTokenIds": OUTPUTS,
                            "candidateCount": len(OUTPUTS)})
        if sink not in terminal:
            raise GraphQLError(f"No token of row {row_id} reached sink {sink}", extensions={"code": "NOT_FOUND"})
        return Explanation(token=Token(token_id=terminal[sink]))

    @strawberry.field
    def run(self, run_id: str) -> Run | None:
        return Run(run_id=run_id, status=RunStatus.COMPLETED) if run_id == RUN_ID else None


schema = strawberry.Schema(query=Query)


def execute(query: str, variables: dict[str, Any] | None, operation_name: str | None) -> dict[str, Any]:
    try:
        result = schema.execute_sync(query, variable_values=variables, operation_name=operation_name)
    except CannotGetOperationTypeError:
        return {"data": None, "errors": [{"message": f"Unknown operation named '{operation_name}'",
                                          "extensions": {"code": "BAD_REQUEST"}}]}
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return body
