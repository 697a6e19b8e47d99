"""Source schema contracts: what ELSPETH recorded about each source's fields.

Epoch 2 kept one contract per run (`runs.schema_contract_json` / `schema_contract_hash`, with
the name mapping in `runs.source_field_resolution_json`); epoch 29 keeps one per source in
`run_sources` (`schema_contract_json`, `schema_contract_hash`, `field_resolution_json`), where
a source whose contract is only locked at its first row may have none yet. ELSPETH's own tool
reads the first source only; here every source of every asked run comes back, batched by run.

A contract is Tier-1 audit data: ELSPETH restores it "with integrity verification" (the
`version_hash` it stored must be the hash of what it stored), and so do we. Anything malformed
(unparsable JSON, missing or mistyped keys, an unknown mode, duplicate names, a hash that does
not match the content or the hash column) is an AUDIT_INTEGRITY error naming the run and source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import rfc8785
from sqlalchemy import Select, and_, select

from ..errors import AuditIntegrityError
from . import records as R
from ._keys import in_keys
from ._rowmap import enum_value, ts_value
from ._statements import fetch_by_keys, record_columns
from .enums import SourceLifecycle
from .session import DbSession


class ContractMode(Enum):
    FIXED = "FIXED"
    FLEXIBLE = "FLEXIBLE"
    OBSERVED = "OBSERVED"


class FieldOrigin(Enum):
    DECLARED = "declared"
    INFERRED = "inferred"


@dataclass(frozen=True, slots=True)
class ContractField:
    normalized_name: str
    original_name: str
    python_type: str
    required: bool
    nullable: bool
    origin: FieldOrigin


@dataclass(frozen=True, slots=True)
class Contract:
    mode: ContractMode
    locked: bool
    version_hash: str
    fields: tuple[ContractField, ...]  # by normalized name, as ELSPETH stores them

    def find(self, name: str) -> ContractField | None:
        """ELSPETH's `SchemaContract.find_name`: a normalized name first, else an original one."""
        for f in self.fields:
            if f.normalized_name == name:
                return f
        return next((f for f in self.fields if f.original_name == name), None)


@dataclass(frozen=True, slots=True)
class SourceContract:
    """One source of a run and the contract recorded for it (None: none recorded yet)."""

    run_id: str
    source_node_id: str | None  # epoch 2: the run's source node, when it has exactly one
    source_name: str | None  # epoch 29 only
    lifecycle_state: SourceLifecycle | None  # epoch 29 only
    recorded_at: datetime | None  # epoch 29 only
    node: R.NodeRecord | None
    contract: Contract | None
    stored_hash: str | None
    normalization_version: str | None
    resolution: tuple[tuple[str, str], ...]  # (original name, normalized name), as recorded


def version_hash(mode: str, locked: bool, fields: Sequence[ContractField]) -> str:
    """ELSPETH's `SchemaContract.version_hash()`: SHA-256 of the RFC 8785 form of the mode, the
    lock and every field (by normalized name), cut to 32 hex characters."""
    defs = [{"n": f.normalized_name, "o": f.original_name, "t": f.python_type, "r": f.required,
             "s": f.origin.value, "nullable": f.nullable}
            for f in sorted(fields, key=lambda f: f.normalized_name)]
    body = rfc8785.dumps({"mode": mode, "locked": locked, "fields": defs})
    return hashlib.sha256(body).hexdigest()[:32]


class _Bad(Exception):
    """A contract breaks a rule; the caller names the record."""


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise _Bad(f"'{key}' is missing")
    value = obj[key]
    # bool is an int in Python: a count must not pass as a flag, nor the reverse.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _Bad(f"'{key}' is not a {getattr(kind, '__name__', kind)}")
    return value


def _parse_field(raw: Any) -> ContractField:
    if not isinstance(raw, dict):
        raise _Bad("a field is not an object")
    origin = _get(raw, "source", str)
    try:
        parsed_origin = FieldOrigin(origin)
    except ValueError:
        raise _Bad(f"field source {origin!r} is neither 'declared' nor 'inferred'") from None
    return ContractField(normalized_name=_get(raw, "normalized_name", str),
                         original_name=_get(raw, "original_name", str),
                         python_type=_get(raw, "python_type", str), required=_get(raw, "required", bool),
                         nullable=_get(raw, "nullable", bool), origin=parsed_origin)


def parse_contract(text: str, stored_hash: str | None) -> Contract:
    """The contract ELSPETH stored, verified; `_Bad` if it breaks any rule."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise _Bad("the contract is not JSON") from None
    if not isinstance(raw, dict):
        raise _Bad("the contract is not a JSON object")
    mode = _get(raw, "mode", str)
    try:
        parsed_mode = ContractMode(mode)
    except ValueError:
        raise _Bad(f"mode {mode!r} is not FIXED, FLEXIBLE or OBSERVED") from None
    locked = _get(raw, "locked", bool)
    stored = _get(raw, "version_hash", str)
    fields = tuple(_parse_field(f) for f in _get(raw, "fields", list))
    names = [f.normalized_name for f in fields]
    if len(set(names)) != len(names):
        raise _Bad("two fields share a normalized name")
    actual = version_hash(mode, locked, fields)
    if actual != stored:
        raise _Bad(f"version_hash {stored} is not the hash of the contract ({actual})")
    if stored_hash is not None and stored_hash != stored:
        raise _Bad(f"schema_contract_hash {stored_hash} differs from the contract's version_hash {stored}")
    return Contract(parsed_mode, locked, stored, fields)


def _parse_resolution(text: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    if text is None:
        return None, ()
    try:
        raw = json.loads(text)
    except ValueError:
        raise _Bad("the field resolution is not JSON") from None
    if not isinstance(raw, dict):
        raise _Bad("the field resolution is not a JSON object")
    version = _get(raw, "normalization_version", str)
    mapping = _get(raw, "resolution_mapping", dict)
    pairs = []
    for original, normalized in mapping.items():
        if not isinstance(normalized, str):
            raise _Bad(f"the resolution of {original!r} is not a name")
        pairs.append((original, normalized))
    return version, tuple(pairs)


def _source(run_id: str, where: str, *, contract_json: str | None, stored_hash: str | None,
            resolution_json: str | None, **rest: Any) -> SourceContract:
    try:
        contract = None if contract_json is None else parse_contract(contract_json, stored_hash)
        version, pairs = _parse_resolution(resolution_json)
    except _Bad as bad:
        raise AuditIntegrityError(where, "a recorded schema contract is well-formed and verifies", str(bad)) from None
    if contract is None and stored_hash is not None:
        raise AuditIntegrityError(where, "a recorded schema contract is well-formed and verifies",
                                  "a contract hash without a contract")
    return SourceContract(run_id=run_id, contract=contract, stored_hash=stored_hash, normalization_version=version,
                          resolution=pairs, **rest)


def _node(db: DbSession, columns: Sequence[Any]) -> R.NodeRecord | None:
    if columns[0] is None:
        return None
    node: R.NodeRecord = R.record_mapper(R.NodeRecord, db.epoch)(columns)
    return node


async def contracts_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[SourceContract]:
    """Every source contract of the runs: epoch 29 one per `run_sources` row, by source name;
    epoch 2 the run's contract, if it recorded one."""
    if db.epoch < 29:
        return await _epoch2(db, run_ids)
    if db.tables.run_sources is None:  # a database without the table (tables.OPTIONAL_TABLES)
        return []
    return await _epoch29(db, run_ids)


async def _epoch29(db: DbSession, run_ids: Sequence[str]) -> list[SourceContract]:
    def build() -> Select[Any]:
        s, n = db.tables.run_sources, db.tables.nodes
        assert s is not None
        return (select(s.c.run_id, s.c.source_node_id, s.c.source_name, s.c.lifecycle_state, s.c.recorded_at,
                       s.c.schema_contract_json, s.c.schema_contract_hash, s.c.field_resolution_json,
                       *record_columns(n, R.NodeRecord))
                .select_from(s.outerjoin(n, and_(n.c.run_id == s.c.run_id, n.c.node_id == s.c.source_node_id)))
                .where(in_keys(db.dialect, s.c.run_id))
                .order_by(s.c.run_id, s.c.source_name, s.c.source_node_id))

    out = []
    for r in await fetch_by_keys(db, "contracts/epoch29", build, run_ids):
        where = f"run_sources[run {r[0]}, source {r[2]}]"
        lifecycle = enum_value(SourceLifecycle, r[3], db.epoch, where, "lifecycle_state")
        node = _node(db, r[8:])
        if node is None:
            raise AuditIntegrityError(where, "every record names a node of its run",
                                      f"source node {r[1]!r} is not in run {r[0]}")
        out.append(_source(r[0], where, contract_json=r[5], stored_hash=r[6], resolution_json=r[7],
                           source_node_id=r[1], source_name=r[2], lifecycle_state=lifecycle,
                           recorded_at=ts_value(r[4]), node=node))
    return out


async def _epoch2(db: DbSession, run_ids: Sequence[str]) -> list[SourceContract]:
    def build() -> Select[Any]:
        run, n = db.tables.runs, db.tables.nodes
        return (select(run.c.run_id, run.c.schema_contract_json, run.c.schema_contract_hash,
                       run.c.source_field_resolution_json, *record_columns(n, R.NodeRecord))
                .select_from(run.outerjoin(n, and_(n.c.run_id == run.c.run_id, n.c.node_type == "source")))
                .where(in_keys(db.dialect, run.c.run_id), run.c.schema_contract_json.is_not(None))
                .order_by(run.c.run_id, n.c.node_id))

    by_run: dict[str, list[Any]] = {}
    for r in await fetch_by_keys(db, "contracts/epoch2", build, run_ids):
        by_run.setdefault(r[0], []).append(r)
    out = []
    for run_id, rows in by_run.items():
        first = rows[0]
        # One contract per run in epoch 2, whose pipelines had one source: it is that source's,
        # unless the run has several source nodes (then none of them is named).
        node = _node(db, first[4:]) if len(rows) == 1 else None
        out.append(_source(run_id, f"runs[{run_id}]", contract_json=first[1], stored_hash=first[2],
                           resolution_json=first[3], source_node_id=None if node is None else node.node_id,
                           source_name=None, lifecycle_state=None, recorded_at=None, node=node))
    return out
