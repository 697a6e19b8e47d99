"""GraphQL types of the source schema contracts: Run.contract and Run.field(name).

ELSPETH's MCP tools `get_run_contract` and `explain_field` read the contract of a run's first
source only; these fields give every source's. Each object is built from the records of
`db/contracts.py`, which verified them (Tier 1) when they were read.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from ..context import Info
from ..db import contracts as C
from ..db import records as R
from ..resolvers import analytics as RA
from .enums import SourceLifecycle

if TYPE_CHECKING:
    from .runs import PipelineNode

PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]

strawberry.enum(C.ContractMode, description=(
    "FIXED: exactly the declared fields; FLEXIBLE: the declared ones plus extras inferred from "
    "the first row; OBSERVED: every field inferred from the first row."))
strawberry.enum(C.FieldOrigin, description="DECLARED in the pipeline's configuration, or INFERRED from the first row.")


@strawberry.type(description="One field of a source's schema contract.")
class ContractField:
    normalized_name: str = strawberry.field(description="The key rows carry (a Python identifier)")
    original_name: str = strawberry.field(description="The name at the source, e.g. a CSV header as written")
    python_type: str = strawberry.field(description="As ELSPETH records it: int, str, float, bool, datetime, object...")
    required: bool
    nullable: bool
    origin: C.FieldOrigin

    @staticmethod
    def of(f: C.ContractField) -> ContractField:
        return ContractField(normalized_name=f.normalized_name, original_name=f.original_name,
                             python_type=f.python_type, required=f.required, nullable=f.nullable, origin=f.origin)


@strawberry.type(description="How the source resolved one original name (its recorded field resolution).")
class NameResolution:
    original_name: str
    normalized_name: str


@strawberry.type(description=(
    "A source of the run and the schema contract ELSPETH recorded for it. Epoch 29 records one per "
    "source (run_sources); epoch 2 one per run, shown as its source's. The contract's fields are "
    "null (and `fields` empty) for a source that has not recorded one yet: an OBSERVED or FLEXIBLE "
    "source locks its contract at its first row. Read with ELSPETH's integrity check: a contract "
    "whose versionHash is not the hash of its content is an AUDIT_INTEGRITY error."))
class SourceContract:
    source_node_id: str | None = strawberry.field(
        description="The source node; in epoch 2 null when the run has several source nodes")
    source_name: str | None = strawberry.field(description="The source's name in the pipeline (epoch 29 only)")
    plugin: str | None
    lifecycle_state: SourceLifecycle | None = strawberry.field(description="Epoch 29 only")
    recorded_at: datetime | None = strawberry.field(description="When the contract was recorded (epoch 29 only)")
    mode: C.ContractMode | None
    locked: bool | None = strawberry.field(description="True once the first row froze the types")
    version_hash: str | None = strawberry.field(
        description="ELSPETH's hash of the contract (mode, lock, fields), verified against the content")
    fields: list[ContractField] = strawberry.field(description="By normalized name, as ELSPETH stores them")
    normalization_version: str | None = strawberry.field(description="Of the field-name normalization applied")
    name_resolution: list[NameResolution] = strawberry.field(
        description="Original name -> normalized name, as the source recorded it")
    _node: strawberry.Private[R.NodeRecord | None]

    @strawberry.field
    def node(self) -> PipelineNodeT | None:
        return cast("PipelineNode | None", self._node)

    @staticmethod
    def of(s: C.SourceContract) -> SourceContract:
        c = s.contract
        return SourceContract(
            source_node_id=s.source_node_id, source_name=s.source_name,
            plugin=None if s.node is None else s.node.plugin_name, lifecycle_state=s.lifecycle_state,
            recorded_at=s.recorded_at, mode=None if c is None else c.mode, locked=None if c is None else c.locked,
            version_hash=None if c is None else c.version_hash,
            fields=[] if c is None else [ContractField.of(f) for f in c.fields],
            normalization_version=s.normalization_version,
            name_resolution=[NameResolution(original_name=o, normalized_name=n) for o, n in s.resolution],
            _node=s.node)


@strawberry.type(description="A field as one source's contract has it: its provenance at that source.")
class SourceField:
    source: SourceContract
    field: ContractField


async def run_contract(info: Info, run_id: str) -> list[SourceContract]:
    return [SourceContract.of(s) for s in await RA.source_contracts(info.context, run_id)]


async def run_field(info: Info, run_id: str, name: str) -> list[SourceField]:
    return [SourceField(source=SourceContract.of(s), field=ContractField.of(f))
            for s, f in await RA.field_provenance(info.context, run_id, name)]
