"""The payload store reader against ELSPETH's real stores and against hostile or damaged ones."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import io
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.payloads import (
    ByteBudget,
    Payload,
    PayloadState,
    PayloadStore,
)

FIXTURES = Path(__file__).parent / "fixtures"
ALL_DATABASES = sorted(FIXTURES.glob("epoch*/*.db"))
LLM_DATABASES = [FIXTURES / "epoch2" / "llm-calls.db", FIXTURES / "epoch29" / "llm-calls.db"]


def _store_of(db: Path) -> Path:
    return db.with_suffix(".payloads")


def _query(db: Path, tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    # The fixtures are WAL databases: opening them in place would leave -wal/-shm files behind.
    copy = tmp_path / db.name
    if not copy.exists():
        shutil.copy(db, copy)
    with sqlite3.connect(copy) as connection:
        return connection.execute(sql).fetchall()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(root: Path, data: bytes) -> str:
    ref = _sha(data)
    (root / ref[:2]).mkdir(parents=True, exist_ok=True)
    (root / ref[:2] / ref).write_bytes(data)
    return ref


def _id(db: Path) -> str:
    return f"{db.parent.name}/{db.stem}"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    root.mkdir()
    return root


class FileAccessSpy:
    """Records every way the reader could touch the filesystem, and from which thread.

    Recording starts only at `start()`, so a test's own setup (writing files, building the
    store) is not mistaken for the reader's doing.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.recording = False

    def start(self) -> None:
        self.calls.clear()
        self.recording = True

    def wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.recording:
                return original(path, *args, **kwargs)
            self.calls.append(
                (
                    name,
                    os.fsdecode(path) if isinstance(path, (str, os.PathLike)) else repr(path),
                    threading.get_ident(),
                )
            )
            return original(path, *args, **kwargs)

        return spy

    def opened(self) -> list[str]:
        return [path for name, path, _ in self.calls if name in {"os.open", "builtins.open", "io.open"}]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileAccessSpy]:
    recorder = FileAccessSpy()
    for owner, attribute, label in [
        (os, "open", "os.open"),
        (os, "stat", "os.stat"),
        (os, "lstat", "os.lstat"),
        (os.path, "realpath", "os.path.realpath"),
        (builtins, "open", "builtins.open"),
        (io, "open", "io.open"),
    ]:
        monkeypatch.setattr(owner, attribute, recorder.wrap(label, getattr(owner, attribute)))
    yield recorder


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    hops: list[Callable[..., Any]] = []
    original = asyncio.to_thread

    async def counting_to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting_to_thread)
    return hops


def _assert_available(payload: Payload, ref: str) -> None:
    assert payload.state is PayloadState.AVAILABLE, payload.problem
    assert payload.ref == ref
    assert payload.problem is None
    assert payload.data is not None
    assert not payload.truncated
    assert payload.size_bytes == len(payload.data)
    assert _sha(payload.data) == ref


# --- the real vendored stores -------------------------------------------------------------------


@pytest.mark.parametrize("db", LLM_DATABASES, ids=_id)
async def test_every_llm_call_payload_is_available_and_parses(db: Path, tmp_path: Path) -> None:
    rows = _query(
        db,
        tmp_path,
        "SELECT request_ref, request_hash FROM calls WHERE request_ref IS NOT NULL "
        "UNION ALL SELECT response_ref, response_hash FROM calls WHERE response_ref IS NOT NULL",
    )
    assert len(rows) >= 80  # both fixtures record dozens of calls; an empty query would prove nothing
    store = PayloadStore([_store_of(db)])

    payloads = await store.read_many(rows, budget=ByteBudget())

    assert len(payloads) == len(rows)
    for (ref, recorded), payload in zip(rows, payloads, strict=True):
        _assert_available(payload, ref)
        assert payload.hash == recorded
        assert isinstance(payload.json, dict)


@pytest.mark.parametrize("db", ALL_DATABASES, ids=_id)
async def test_every_row_source_payload_is_available(db: Path, tmp_path: Path) -> None:
    rows = _query(db, tmp_path, "SELECT source_data_ref, source_data_hash FROM rows ORDER BY rowid")
    assert rows
    payloads = await PayloadStore([_store_of(db)]).read_many(rows, budget=ByteBudget())
    for (ref, _), payload in zip(rows, payloads, strict=True):
        _assert_available(payload, ref)
        assert payload.json is not None


@pytest.mark.parametrize("db", sorted(FIXTURES.glob("epoch29/*.db")), ids=_id)
async def test_epoch29_token_payloads_and_hash_only_calls(db: Path, tmp_path: Path) -> None:
    tokens = _query(db, tmp_path, "SELECT token_data_ref, NULL FROM tokens")
    calls = _query(db, tmp_path, "SELECT request_ref, request_hash FROM calls")
    payloads = await PayloadStore([_store_of(db)]).read_many(tokens + calls, budget=ByteBudget())

    for (ref, recorded), payload in zip(tokens + calls, payloads, strict=True):
        if ref is not None:
            _assert_available(payload, ref)
        elif recorded is not None:
            assert payload.state is PayloadState.HASH_ONLY
            assert payload.hash == recorded
            assert payload.data is None
        else:
            assert payload.state is PayloadState.NEVER_STORED


# --- damaged stores ---------------------------------------------------------------------------


@pytest.fixture
def copied_llm_store(tmp_path: Path) -> tuple[Path, list[tuple[str, str]]]:
    db = FIXTURES / "epoch29" / "llm-calls.db"
    refs = _query(db, tmp_path, "SELECT request_ref, request_hash FROM calls WHERE request_ref IS NOT NULL")
    store = tmp_path / "copied.payloads"
    shutil.copytree(_store_of(db), store)
    return store, refs


async def test_tampered_payload_fails_integrity(copied_llm_store: tuple[Path, list[tuple[str, str]]]) -> None:
    store, refs = copied_llm_store
    victim, _ = refs[3]
    path = store / victim[:2] / victim
    path.write_bytes(path.read_bytes().replace(b"{", b"[", 1))

    payloads = await PayloadStore([store]).read_many(refs, budget=ByteBudget())

    broken = payloads[3]
    assert broken.state is PayloadState.INTEGRITY_FAILED
    assert broken.data is None
    assert broken.problem is not None and victim in broken.problem
    assert str(store) not in broken.problem and "/" not in broken.problem.replace(victim, "")
    assert all(p.state is PayloadState.AVAILABLE for i, p in enumerate(payloads) if refs[i][0] != victim)


async def test_deleted_payload_is_purged(copied_llm_store: tuple[Path, list[tuple[str, str]]]) -> None:
    store, refs = copied_llm_store
    victim, recorded = refs[0]
    (store / victim[:2] / victim).unlink()

    [purged, other] = await PayloadStore([store]).read_many([refs[0], refs[1]], budget=ByteBudget())

    assert purged.state is PayloadState.PURGED
    assert (purged.ref, purged.hash, purged.data) == (victim, recorded, None)
    assert purged.problem is not None and victim in purged.problem and str(store) not in purged.problem
    assert other.state is PayloadState.AVAILABLE


async def test_missing_shard_folder_is_purged(store_root: Path) -> None:
    [payload] = await PayloadStore([store_root]).read_many([("ab" * 32, None)], budget=ByteBudget())
    assert payload.state is PayloadState.PURGED


# --- states decided without a file ------------------------------------------------------------


async def test_hash_only_and_never_stored_touch_nothing(
    store_root: Path, spy: FileAccessSpy, thread_hops: list[Callable[..., Any]]
) -> None:
    recorded = "cd" * 32
    store = PayloadStore([store_root])
    spy.start()
    hash_only, never = await store.read_many([(None, recorded), (None, None)], budget=ByteBudget())
    assert hash_only == Payload(state=PayloadState.HASH_ONLY, ref=None, hash=recorded)
    assert never == Payload(state=PayloadState.NEVER_STORED, ref=None, hash=None)
    assert spy.calls == []
    assert thread_hops == []


async def test_unconfigured_store_reports_a_ref_as_not_configured(spy: FileAccessSpy) -> None:
    ref = "ef" * 32
    spy.start()
    [with_ref, hash_only, malformed] = await PayloadStore.unconfigured().read_many(
        [(ref, ref), (None, ref), ("../x", None)], budget=ByteBudget()
    )
    assert with_ref == Payload(state=PayloadState.STORE_NOT_CONFIGURED, ref=ref, hash=ref)
    assert hash_only.state is PayloadState.HASH_ONLY
    # A malformed ref is a fact about the database, whether or not a store is configured.
    assert malformed.state is PayloadState.INTEGRITY_FAILED
    assert spy.calls == []


async def test_recorded_hash_that_differs_from_ref_fails_without_reading(
    store_root: Path, spy: FileAccessSpy
) -> None:
    ref = _put(store_root, b'{"a": 1}')
    store = PayloadStore([store_root])
    spy.start()
    [payload] = await store.read_many([(ref, "00" * 32)], budget=ByteBudget())
    assert payload.state is PayloadState.INTEGRITY_FAILED
    assert payload.problem is not None and "recorded hash" in payload.problem
    assert payload.data is None
    assert spy.opened() == []


# --- hostile refs -----------------------------------------------------------------------------

_REAL_REF = _sha(b"bait")
MALFORMED_REFS = {
    "parent-traversal": "../../etc/passwd",
    "uppercase": _REAL_REF.upper(),
    "63-chars": _REAL_REF[:63],
    "65-chars": _REAL_REF + "0",
    "shard-traversal": "00/../..",
    "trailing-newline": _REAL_REF + "\n",
    "absolute": "/" + _REAL_REF[:63],
    "nul-byte": _REAL_REF[:32] + "\x00" + _REAL_REF[33:],
    "non-ascii-digit": "\u0661" + _REAL_REF[1:],
    "empty": "",
    "huge": "../" * 5000,
}


@pytest.mark.parametrize("ref", MALFORMED_REFS.values(), ids=MALFORMED_REFS.keys())
async def test_malformed_ref_never_reaches_the_filesystem(
    ref: str,
    tmp_path: Path,
    spy: FileAccessSpy,
    thread_hops: list[Callable[..., Any]],
) -> None:
    # The bait sits where a traversal would land and is named by a valid hash, so only the
    # ref check stands between it and the reader.
    (tmp_path / "bait").write_bytes(b"bait")
    root = tmp_path / "store"
    _put(root, b"bait")
    store = PayloadStore([root])
    spy.start()

    [payload] = await store.read_many([(ref, None)], budget=ByteBudget())

    assert payload.state is PayloadState.INTEGRITY_FAILED
    assert payload.data is None
    assert payload.problem is not None and "malformed" in payload.problem
    assert len(payload.problem) < 200
    assert spy.calls == []
    assert thread_hops == []


async def test_non_string_ref_from_a_loosely_typed_column_is_malformed(store_root: Path) -> None:
    [payload] = await PayloadStore([store_root]).read_many([(b"\x00" * 64, None)], budget=ByteBudget())  # type: ignore[list-item]
    assert payload.state is PayloadState.INTEGRITY_FAILED
    assert isinstance(payload.ref, str)


async def test_symlinked_file_escaping_the_store_fails(
    tmp_path: Path, store_root: Path, spy: FileAccessSpy
) -> None:
    # The outside file's content matches the ref, so the hash check alone would accept it.
    secret = tmp_path / "secret"
    secret.write_bytes(b'{"secret": true}')
    ref = _sha(secret.read_bytes())
    (store_root / ref[:2]).mkdir()
    (store_root / ref[:2] / ref).symlink_to(secret)
    store = PayloadStore([store_root])
    spy.start()

    [payload] = await store.read_many([(ref, ref)], budget=ByteBudget())

    assert payload.state is PayloadState.INTEGRITY_FAILED
    assert (
        payload.problem is not None and "outside" in payload.problem and str(tmp_path) not in payload.problem
    )
    assert payload.data is None
    assert str(secret) not in spy.opened()
    assert spy.opened() == []


async def test_symlinked_shard_folder_escaping_the_store_fails(
    tmp_path: Path, store_root: Path, spy: FileAccessSpy
) -> None:
    outside = tmp_path / "outside"
    ref = _put(outside, b"[1, 2, 3]")
    (store_root / ref[:2]).symlink_to(outside / ref[:2], target_is_directory=True)
    store = PayloadStore([store_root])
    spy.start()

    [payload] = await store.read_many([(ref, None)], budget=ByteBudget())

    assert payload.state is PayloadState.INTEGRITY_FAILED
    assert spy.opened() == []


async def test_symlink_staying_inside_the_store_is_followed(store_root: Path) -> None:
    ref = _put(store_root / "dedup", b'"shared"')
    (store_root / ref[:2]).mkdir()
    (store_root / ref[:2] / ref).symlink_to(store_root / "dedup" / ref[:2] / ref)

    [payload] = await PayloadStore([store_root]).read_many([(ref, ref)], budget=ByteBudget())

    _assert_available(payload, ref)
    assert payload.json == "shared"


async def test_symlinked_store_root_is_allowed(tmp_path: Path) -> None:
    real_root = tmp_path / "real"
    ref = _put(real_root, b"{}")
    (tmp_path / "link").symlink_to(real_root, target_is_directory=True)

    [payload] = await PayloadStore([tmp_path / "link"]).read_many([(ref, None)], budget=ByteBudget())

    _assert_available(payload, ref)


async def test_directory_and_fifo_in_place_of_a_file_fail(store_root: Path) -> None:
    as_dir, as_fifo = "a1" * 32, "b2" * 32
    (store_root / as_dir[:2] / as_dir).mkdir(parents=True)
    (store_root / as_fifo[:2]).mkdir()
    os.mkfifo(store_root / as_fifo[:2] / as_fifo)

    # A FIFO opened without O_NONBLOCK would hang here forever, hence the timeout.
    payloads = await asyncio.wait_for(
        PayloadStore([store_root]).read_many([(as_dir, None), (as_fifo, None)], budget=ByteBudget()),
        timeout=10,
    )

    for payload in payloads:
        assert payload.state is PayloadState.INTEGRITY_FAILED
        assert payload.problem is not None and "regular file" in payload.problem


# --- budgets and truncation ------------------------------------------------------------------


async def test_budget_cuts_exactly_when_exceeded(store_root: Path) -> None:
    first, second, third = (_put(store_root, bytes([n]) * 60) for n in (1, 2, 3))
    store = PayloadStore([store_root])
    refs: list[tuple[str | None, str | None]] = [(first, None), (second, None), (third, None)]

    exact = await store.read_many(refs, budget=ByteBudget(180))
    assert [(p.truncated, len(p.data or b"")) for p in exact] == [(False, 60)] * 3

    budget = ByteBudget(179)
    cut = await store.read_many(refs, budget=budget)
    assert [(p.truncated, len(p.data or b"")) for p in cut] == [(False, 60), (False, 60), (True, 59)]

    budget = ByteBudget(100)
    cut = await store.read_many(refs, budget=budget)
    assert [(p.state, p.truncated, p.data, p.size_bytes) for p in cut] == [
        (PayloadState.AVAILABLE, False, bytes([1]) * 60, 60),
        (PayloadState.AVAILABLE, True, bytes([2]) * 40, 60),
        (PayloadState.AVAILABLE, True, b"", 60),
    ]
    assert budget.remaining_bytes == 0


async def test_per_payload_cap_keeps_a_prefix_of_a_large_file_and_hashes_all_of_it(store_root: Path) -> None:
    content = b'{"blob": "' + b"x" * 300_000 + b'"}'
    ref = _put(store_root, content)
    budget = ByteBudget(1_000_000)

    [payload] = await PayloadStore([store_root], max_bytes_per_payload=1024).read_many(
        [(ref, ref)], budget=budget
    )

    assert payload.state is PayloadState.AVAILABLE
    assert payload.size_bytes == len(content)
    assert payload.data == content[:1024]
    assert payload.truncated
    assert payload.json is None  # a cut document is never parsed
    assert payload.text == content[:1024].decode()
    assert budget.remaining_bytes == 1_000_000 - 1024


async def test_integrity_is_checked_beyond_the_returned_prefix(store_root: Path) -> None:
    content = b"a" * 200_000
    ref = _put(store_root, content)
    path = store_root / ref[:2] / ref
    path.write_bytes(content[:-1] + b"b")  # only the last byte, far past every cut, changes

    for store, budget in [
        (PayloadStore([store_root], max_bytes_per_payload=16), ByteBudget()),
        (PayloadStore([store_root]), ByteBudget(0)),
    ]:
        [payload] = await store.read_many([(ref, None)], budget=budget)
        assert payload.state is PayloadState.INTEGRITY_FAILED
        assert payload.data is None


async def test_failed_payloads_do_not_consume_budget(store_root: Path) -> None:
    good = _put(store_root, b"1" * 50)
    bad = _put(store_root, b"2" * 50)
    (store_root / bad[:2] / bad).write_bytes(b"3" * 50)
    budget = ByteBudget(50)

    bad_payload, good_payload = await PayloadStore([store_root]).read_many(
        [(bad, None), (good, None)], budget=budget
    )

    assert bad_payload.state is PayloadState.INTEGRITY_FAILED
    assert good_payload.data == b"1" * 50 and not good_payload.truncated


async def test_concurrent_reads_share_one_budget(store_root: Path) -> None:
    refs = [(_put(store_root, f"{n:04d}".encode() * 25), None) for n in range(40)]  # 100 bytes each
    budget = ByteBudget(1_050)
    store = PayloadStore([store_root])

    batches = await asyncio.gather(*(store.read_many(refs[i::4], budget=budget) for i in range(4)))

    payloads = [p for batch in batches for p in batch]
    assert all(p.state is PayloadState.AVAILABLE for p in payloads)
    assert sum(len(p.data or b"") for p in payloads) == 1_050
    assert sum(not p.truncated for p in payloads) == 10
    assert budget.remaining_bytes == 0


async def test_duplicate_refs_are_read_once_and_charged_per_occurrence(
    store_root: Path, spy: FileAccessSpy
) -> None:
    ref = _put(store_root, b"[" + b"1," * 20 + b"1]")  # 43 bytes
    other = _put(store_root, b"{}")
    budget = ByteBudget(100)
    store = PayloadStore([store_root])
    spy.start()

    payloads = await store.read_many([(ref, ref), (other, None), (ref, None), (ref, ref)], budget=budget)

    assert [p.ref for p in payloads] == [ref, other, ref, ref]
    assert [p.hash for p in payloads] == [ref, None, None, ref]
    assert [len(p.data or b"") for p in payloads] == [43, 2, 43, 12]
    assert [p.truncated for p in payloads] == [False, False, False, True]
    assert payloads[0].json == [1] * 21
    assert [path.rsplit("/", 1)[-1] for path in spy.opened()] == [ref, other]


async def test_byte_budget_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError):
        ByteBudget(-1)
    with pytest.raises(ValueError):
        ByteBudget(10).reserve(-1)
    budget = ByteBudget(10)
    assert (budget.reserve(4), budget.reserve(10), budget.reserve(1)) == (4, 6, 0)


# --- several roots ----------------------------------------------------------------------------


async def test_roots_are_searched_in_order_and_the_first_existing_file_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    only_in_second = _put(second, b'"second"')
    in_both = _put(first, b'"both"')
    _put(second, b'"both"')
    (first / in_both[:2] / in_both).write_bytes(b'"corrupt"')  # the first root's copy is damaged
    first.joinpath("ff").mkdir()
    nowhere = "ff" * 32

    refs: list[tuple[str | None, str | None]] = [(only_in_second, None), (in_both, None), (nowhere, None)]
    forward = await PayloadStore([first, second]).read_many(refs, budget=ByteBudget())
    backward = await PayloadStore([second, first]).read_many(refs, budget=ByteBudget())

    assert [p.state for p in forward] == [
        PayloadState.AVAILABLE,
        PayloadState.INTEGRITY_FAILED,  # found first in `first`: no silent fallback to another copy
        PayloadState.PURGED,
    ]
    assert forward[0].json == "second"
    assert [p.state for p in backward] == [
        PayloadState.AVAILABLE,
        PayloadState.AVAILABLE,
        PayloadState.PURGED,
    ]
    assert backward[1].json == "both"


def test_store_construction_rejects_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PayloadStore([tmp_path / "missing"])
    with pytest.raises(TypeError):
        PayloadStore(str(tmp_path))  # a str is a Sequence[str], so only a runtime check catches it
    with pytest.raises(ValueError):
        PayloadStore([tmp_path], max_bytes_per_payload=-1)


# --- threading ---------------------------------------------------------------------------------


async def test_all_file_io_of_one_call_happens_in_one_worker_thread_hop(
    tmp_path: Path, spy: FileAccessSpy, thread_hops: list[Callable[..., Any]]
) -> None:
    db = FIXTURES / "epoch2" / "fork-coalesce.db"
    rows = _query(db, tmp_path, "SELECT source_data_ref, source_data_hash FROM rows")
    store = PayloadStore([_store_of(db)])
    loop_thread = threading.get_ident()
    spy.start()

    payloads = await store.read_many(rows, budget=ByteBudget())

    assert len(payloads) == 300 and all(p.state is PayloadState.AVAILABLE for p in payloads)
    assert len(thread_hops) == 1
    opens = [(path, thread) for name, path, thread in spy.calls if name == "os.open"]
    assert len(opens) == 300
    threads = {thread for _, _, thread in spy.calls}
    assert len(threads) == 1
    assert loop_thread not in threads


# --- Payload helpers ---------------------------------------------------------------------------


def test_text_and_json_helpers() -> None:
    whole = Payload(PayloadState.AVAILABLE, "a" * 64, None, 5, b'"\xff"', False)
    assert whole.text == '"\ufffd"'
    assert whole.json is None  # invalid UTF-8 is not JSON
    parsed = Payload(PayloadState.AVAILABLE, "a" * 64, None, 4, b"1234", False)
    assert parsed.json == 1234
    cut = Payload(PayloadState.AVAILABLE, "a" * 64, None, 4, b"123", True)
    assert cut.json is None and cut.text == "123"
    absent = Payload(PayloadState.PURGED, "a" * 64, None)
    assert absent.text is None and absent.json is None
