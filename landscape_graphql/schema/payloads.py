"""The Payload type: bytes from the content-addressed store, verified, capped, and explained."""

from __future__ import annotations

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..context import Info
from ..payloads import Payload as PayloadRecord
from ..payloads import PayloadState

strawberry.enum(PayloadState, name="PayloadState", description=(
    "AVAILABLE: read and verified; PURGED: the ref's file is gone (retention); HASH_ONLY: a hash "
    "was recorded but no ref; NEVER_STORED: neither; STORE_NOT_CONFIGURED: a ref but no --payloads "
    "folder holds it; INTEGRITY_FAILED: the bytes' sha256 is not the ref, or the ref is malformed."))


@strawberry.type(description="A payload from ELSPETH's payload store. Bytes are verified against their sha256 on every read.")
class Payload:
    state: PayloadState
    hash: str | None = strawberry.field(description="the recorded sha256")
    ref: str | None
    size_bytes: int | None = strawberry.field(description="the stored file's full size")
    truncated: bool = strawberry.field(description="true when the per-payload or per-response byte cap cut the data")
    problem: str | None = strawberry.field(description="why the payload is not AVAILABLE, when that is a fault")

    @strawberry.field(description="The payload parsed as JSON (null when cut, absent or not JSON).")
    @staticmethod
    def json(parent: Parent[PayloadRecord]) -> JSON | None:
        value: JSON | None = parent.json
        return value

    @strawberry.field(description="The payload as UTF-8 text (possibly cut; see truncated).")
    @staticmethod
    def text(parent: Parent[PayloadRecord]) -> str | None:
        return parent.text


async def load_payload(info: Info, ref: str | None, recorded_hash: str | None) -> PayloadRecord:
    return await info.context.loaders.payload_by_ref.load((ref, recorded_hash))


async def load_by_hash(info: Info, recorded_hash: str | None) -> PayloadRecord:
    """A payload known only by its hash (node states): the store file named by it, if any."""
    from ..payloads import PayloadState as State
    if recorded_hash is None:
        return PayloadRecord(state=State.NEVER_STORED, ref=None, hash=None)
    if info.context.payload_store is None:
        return PayloadRecord(state=State.HASH_ONLY, ref=None, hash=recorded_hash)
    found = await info.context.loaders.payload_by_ref.load((recorded_hash, recorded_hash))
    if found.state in (State.PURGED, State.INTEGRITY_FAILED) and found.problem and "malformed" in found.problem:
        return PayloadRecord(state=State.HASH_ONLY, ref=None, hash=recorded_hash)
    if found.state is State.PURGED:
        return PayloadRecord(state=State.HASH_ONLY, ref=None, hash=recorded_hash)
    return found
