"""The GraphQL enums: ELSPETH's value spaces, exposed as their names in UPPER_CASE."""

from __future__ import annotations

from enum import Enum

import strawberry

from ..db import enums as E

RunStatus = strawberry.enum(E.RunStatus)
NodeType = strawberry.enum(E.NodeType)
Determinism = strawberry.enum(E.Determinism)
NodeStateStatus = strawberry.enum(E.NodeStateStatus)
RoutingMode = strawberry.enum(E.RoutingMode)
CallType = strawberry.enum(E.CallType)
CallStatus = strawberry.enum(E.CallStatus)
OperationType = strawberry.enum(E.OperationType)
OperationStatus = strawberry.enum(E.OperationStatus)
BatchStatus = strawberry.enum(E.BatchStatus)
TriggerType = strawberry.enum(E.TriggerType)
RowOutcome = strawberry.enum(E.RowOutcome, description="Epoch 2's single-axis token outcome.")
TerminalResult = strawberry.enum(E.TerminalResult, description="Epoch 29's outcome: success, failure or transient.")
TerminalPath = strawberry.enum(E.TerminalPath, description="Epoch 29's path a token took to its outcome.")
PreflightResultType = strawberry.enum(E.PreflightResultType)


@strawberry.enum(description="Which of the two outcome views the database stored; the other is derived.")
class OutcomeView(Enum):
    ROW_OUTCOME = "ROW_OUTCOME"
    RESULT_PATH = "RESULT_PATH"


@strawberry.enum(description="How a validation error was tied to a row.")
class MatchedBy(Enum):
    ROW_ID = "ROW_ID"
    ROW_HASH = "ROW_HASH"
