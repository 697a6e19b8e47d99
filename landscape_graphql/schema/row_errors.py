"""GraphQL types of what went wrong and what was written: ValidationError, TransformError, Artifact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..db import records as R
from . import enums as E
from ._json import parse_json
from .relay import Node, to_global_id


@dataclass(frozen=True, slots=True)
class MatchedValidationError:
    """A validation error reached from a row, with how it was tied to that row."""

    record: R.ValidationErrorRecord
    matched_by: E.MatchedBy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)


def _ve(parent: Any) -> R.ValidationErrorRecord:
    return parent.record if isinstance(parent, MatchedValidationError) else parent


@strawberry.type(description="A source row that failed validation (the row was quarantined).")
class ValidationError(Node):
    error_id: str
    run_id: str
    node_id: str | None
    row_id: str | None = strawberry.field(description="epoch 29 only; epoch 2 links errors by rowHash")
    row_hash: str
    error: str
    schema_mode: str
    destination: str
    created_at: datetime
    violation_type: str | None
    original_field_name: str | None
    normalized_field_name: str | None
    expected_type: str | None
    actual_type: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.ValidationErrorRecord | MatchedValidationError)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[Any]) -> strawberry.ID:
        return to_global_id("ValidationError", _ve(parent).error_id)

    @strawberry.field
    @staticmethod
    def row_data(parent: Parent[Any]) -> JSON | None:
        rec = _ve(parent)
        return parse_json(rec.row_data_json, f"validation_errors[{rec.error_id}]", "row_data_json")

    @strawberry.field(description=(
        "How this error was tied to the row it was reached from: ROW_ID, or ROW_HASH (epoch 2 "
        "has only the content hash, so rows with identical content share their errors). Null when "
        "not reached from a row."))
    @staticmethod
    def matched_by(parent: Parent[Any]) -> E.MatchedBy | None:
        return parent.matched_by if isinstance(parent, MatchedValidationError) else None


@strawberry.type(description="A transform failure routed to an error sink (or discarded).")
class TransformError(Node):
    error_id: str
    run_id: str
    token_id: str
    transform_id: str
    row_hash: str
    destination: str
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.TransformErrorRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.TransformErrorRecord]) -> strawberry.ID:
        return to_global_id("TransformError", parent.error_id)

    @strawberry.field
    @staticmethod
    def row_data(parent: Parent[R.TransformErrorRecord]) -> JSON | None:
        return parse_json(parent.row_data_json, f"transform_errors[{parent.error_id}]", "row_data_json")

    @strawberry.field
    @staticmethod
    def error_details(parent: Parent[R.TransformErrorRecord]) -> JSON | None:
        return parse_json(parent.error_details_json, f"transform_errors[{parent.error_id}]", "error_details_json")


@strawberry.type(description="A file or record a sink wrote.")
class Artifact(Node):
    artifact_id: str
    run_id: str
    produced_by_state_id: str | None = strawberry.field(description="epoch 2")
    sink_effect_id: str | None = strawberry.field(description="epoch 29")
    sink_node_id: str
    artifact_type: str
    path_or_uri: str
    content_hash: str
    size_bytes: int
    idempotency_key: str | None
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.ArtifactRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.ArtifactRecord]) -> strawberry.ID:
        return to_global_id("Artifact", parent.artifact_id)
