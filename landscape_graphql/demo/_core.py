"""Deterministic building blocks: ids, a simulated clock, hashing and the payload store.

Everything random comes from one `random.Random(seed)` so that a seed fixes every byte of a
generated database; nothing here reads the wall clock or the OS entropy pool.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._sinks import Files, FileSink

# ELSPETH's fixtures were all recorded on this day; starting there keeps demo data looking alike.
_BASE_US = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp()) * 1_000_000

_UUID4_CLEAR = ~((0xF << 76) | (0xC << 60))
_UUID4_SET = (0x4 << 76) | (0x8 << 60)


def canonical(obj: Any) -> bytes:
    """The byte form ELSPETH stores row payloads in (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compact(obj: Any) -> str:
    """Canonical JSON as text, for the *_json columns."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loose(obj: Any) -> bytes:
    # Epoch 29 writes token payloads with json.dumps defaults (insertion order, ", " and ": "),
    # unlike row payloads; keep that difference so readers are tested against both forms.
    return json.dumps(obj).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_obj(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def error_hash(text: str) -> str:
    # token_outcomes.error_hash is the first 16 hex chars of sha256 over the error text.
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Rand:
    """Ids and numbers drawn from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._bits = self.rng.getrandbits

    def uuid(self) -> str:
        """A 32-hex uuid4 (version and variant bits set like `uuid.uuid4().hex`)."""
        return f"{(self._bits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"

    def hex64(self) -> str:
        return f"{self._bits(256):064x}"

    def hex12(self) -> str:
        return f"{self._bits(48):012x}"

    def hex16(self) -> str:
        return f"{self._bits(64):016x}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def between(self, lo: int, hi: int) -> int:
        return lo + self._bits(32) % (hi - lo + 1)

    def ms(self, lo: float, hi: float) -> float:
        # Rounded so the stored REAL has a short, stable text form.
        return round(lo + (hi - lo) * self.rng.random(), 6)

    def pick(self, seq: list[str] | tuple[str, ...]) -> str:
        return seq[self._bits(32) % len(seq)]


class Clock:
    """Simulated time in integer microseconds, formatted like ELSPETH's SQLite text timestamps."""

    def __init__(self, rand: Rand) -> None:
        self._rand = rand
        # A seed-dependent start within the day, so different seeds give different times.
        self.us = _BASE_US + rand.between(0, 20 * 3600) * 1_000_000
        self._prefixes: dict[int, str] = {}
        # tick() runs once per recorded event; drawing its steps from a precomputed table and
        # formatting within the current second without divmod keeps it cheap.
        self._steps = [rand.rng.getrandbits(20) for _ in range(4096)]
        self._i = 0
        self._sec_lo = self._sec_hi = 0
        self._prefix = ""

    def fmt(self, us: int) -> str:
        sec, frac = divmod(us, 1_000_000)
        prefix = self._prefixes.get(sec)
        if prefix is None:
            # strftime is slow and timestamps cluster in a few seconds (now, lease expiry).
            if len(self._prefixes) > 4096:
                self._prefixes.clear()
            prefix = self._prefixes[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{prefix}.{frac:06d}"

    def iso(self, us: int) -> str:
        """The ISO-8601 form used inside some JSON contexts (`…T…+00:00`)."""
        return self.fmt(us).replace(" ", "T") + "+00:00"

    def tick(self, lo: int = 50, hi: int = 900) -> str:
        """Advance by lo..hi microseconds and return the new time."""
        self._i = i = (self._i + 1) & 4095
        us = self.us = self.us + lo + self._steps[i] % (hi - lo + 1)
        if us >= self._sec_hi:
            sec = us // 1_000_000
            self._sec_lo, self._sec_hi = sec * 1_000_000, sec * 1_000_000 + 1_000_000
            self._prefix = self.fmt(self._sec_lo)[:19]
        return f"{self._prefix}.{us - self._sec_lo:06d}"

    def now(self) -> str:
        return self.fmt(self.us)


class PayloadStore:
    """ELSPETH's content-addressed filesystem store: `<base>/<hash[:2]>/<sha256 of the bytes>`.

    Files are handed to `sink` in batches (written inline or by a helper process)."""

    _BATCH = 256

    def __init__(self, base: Path, sink: FileSink) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self._sink = sink
        self._seen: set[str] = set()
        self._dirs: set[str] = set()
        self._pending: Files = []

    @property
    def count(self) -> int:
        return len(self._seen)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._seen:
            return digest
        self._seen.add(digest)
        sub = digest[:2]
        if sub not in self._dirs:
            (self.base / sub).mkdir(exist_ok=True)
            self._dirs.add(sub)
        self._pending.append((f"{self.base}/{sub}/{digest}", data))
        if len(self._pending) >= self._BATCH:
            self._sink.write(self._pending)
            self._pending = []
        return digest

    def put_json(self, obj: Any) -> str:
        return self.put(canonical(obj))

    def close(self, *, commit: bool = True) -> None:
        """Write what is pending and wait until every file is written."""
        if self._pending and commit:
            self._sink.write(self._pending)
        self._pending = []
        self._sink.close(commit=commit)
