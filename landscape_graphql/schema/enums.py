"""The GraphQL enums: ELSPETH's value spaces, exposed as their names in UPPER_CASE.

The domain enums (db/enums.py) are registered with Strawberry here and used as they are, so a
resolver can return a record's enum member unchanged.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from ..db.enums import (
    BatchStatus,
    CallStatus,
    CallType,
    Determinism,
    NodeStateStatus,
    NodeType,
    OperationStatus,
    OperationType,
    PreflightResultType,
    RoutingMode,
    RowOutcome,
    RunStatus,
    SourceLifecycle,
    TerminalPath,
    TerminalResult,
    TriggerType,
)

for _enum in (RunStatus, NodeType, Determinism, NodeStateStatus, RoutingMode, CallType, CallStatus,
              OperationType, OperationStatus, BatchStatus, TriggerType, PreflightResultType):
    strawberry.enum(_enum)
strawberry.enum(RowOutcome, description="Epoch 2's single-axis token outcome.")
strawberry.enum(TerminalResult, description="Epoch 29's outcome: success, failure or transient.")
strawberry.enum(TerminalPath, description="Epoch 29's path a token took to its outcome.")
strawberry.enum(SourceLifecycle, description="How far the source's loading got (epoch 29's run_sources).")

__all__ = [
    "BatchStatus",
    "CallStatus",
    "CallType",
    "Determinism",
    "MatchedBy",
    "NodeStateStatus",
    "NodeType",
    "OperationStatus",
    "OperationType",
    "OutcomeView",
    "PreflightResultType",
    "RoutingMode",
    "RowOutcome",
    "RunStatus",
    "SourceLifecycle",
    "TerminalPath",
    "TerminalResult",
    "TriggerType",
]


@strawberry.enum(description="Which of the two outcome views the database stored; the other is derived.")
class OutcomeView(Enum):
    ROW_OUTCOME = "ROW_OUTCOME"
    RESULT_PATH = "RESULT_PATH"


@strawberry.enum(description="How a validation error was tied to a row.")
class MatchedBy(Enum):
    ROW_ID = "ROW_ID"
    ROW_HASH = "ROW_HASH"
