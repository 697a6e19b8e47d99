"""How a stored value becomes a record's field, and the generated positional mappers.

The hot path: at hundreds of thousands of rows per export these costs dominate. A frozen
dataclass's __init__ spends ~150 ns per field in object.__setattr__, an Enum call ~0.5 µs,
datetime.replace ~1 µs; so a record type's mapper is generated once per epoch (`build_mapper`)
and reads each column by position with a dict lookup for enums and one C call for timestamps.
What the records are, and their columns, conversions and rules, is in records.py.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from ..errors import AuditIntegrityError
from .enums import EPOCH_ONLY

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


def enum_value(kind: type[E], value: Any, epoch: int, record: str, column: str) -> E:
    """The member of `kind` stored as `value`, legal in `epoch`; else an integrity error."""
    try:
        member = kind(value)
    except ValueError:
        raise AuditIntegrityError(
            record, f"{column} must be one of the {kind.__name__} values",
            f"found {str(value)[:64]!r}") from None
    only = EPOCH_ONLY.get(member)
    if only is not None and only != epoch:
        raise AuditIntegrityError(
            record, f"{column} value {value!r} does not exist in schema epoch {epoch}")
    return member


def opt_enum_value(kind: type[E], value: Any, epoch: int, record: str, column: str) -> E | None:
    return None if value is None else enum_value(kind, value, epoch, record, column)


def utc(value: Any) -> datetime:
    # SQLite gives naive UTC; PostgreSQL gives aware datetimes. Both mean UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


_from_iso = datetime.fromisoformat


def ts_value(value: Any) -> datetime:
    """A stored timestamp in UTC, parsing SQLite's text as SQLAlchemy would (fromisoformat).

    SQLite text is naive UTC, so parsing it with an explicit +00:00 gives the same value as
    parsing then `replace(tzinfo=UTC)`, in one C call. Text that already carries an offset (or
    is no timestamp at all) fails that parse and takes the general route.
    """
    if type(value) is str:
        try:
            return _from_iso(value + "+00:00")
        except ValueError:
            return utc(_from_iso(value))
    return utc(value)


def opt_ts_value(value: Any) -> datetime | None:
    return None if value is None else ts_value(value)


@functools.cache
def _member_table(kind: type[Enum], epoch: int) -> dict[Any, Enum]:
    return {m.value: m for m in kind if EPOCH_ONLY.get(m, epoch) == epoch}


def members(kind: type[E], epoch: int) -> dict[Any, E]:
    """The stored values of `kind` legal in `epoch`, with their members."""
    return _member_table(kind, epoch)  # type: ignore[return-value]


def constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen slotted dataclass that sets its slots directly.

    Equivalent to `cls(*values)` for these classes (no defaults, no __post_init__); the
    instance is as frozen as any other.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    setters = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    source = f"def new({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)
    return namespace["new"]  # type: ignore[no-any-return]


# How a converted field is read: "ts" / "opt_ts" timestamps, or an enum (optional when the
# column may be NULL) of the given kind.
Conversion = tuple[str, type[Enum] | None]
Rule = tuple[Callable[..., None], tuple[str, ...]]  # a check and the columns it reads


def build_mapper(cls: type, names: tuple[str, ...], conversions: Mapping[str, Conversion],
                 rule: Rule | None, record_name: Callable[[Any], str] | None,
                 epoch: int) -> Callable[[Any], Any]:
    """row -> `cls` for rows laid out as `names`: `rule` first, then each conversion.

    An enum value not legal in `epoch` takes `enum_value`, which raises naming the record
    (`record_name(row)`, built only then) and the column.
    """
    namespace: dict[str, Any] = {
        "_new": constructor(cls), "_ts": ts_value, "_opt_ts": opt_ts_value, "_enum": enum_value,
        "_opt_enum": opt_enum_value, "_epoch": epoch, "_rec": record_name,
    }
    lines: list[str] = []
    if rule is not None:
        namespace["_rule"] = rule[0]
        lines.append(f"    _rule({', '.join(f't[{names.index(c)}]' for c in rule[1])})")
    for i, name in enumerate(names):
        how, kind = conversions.get(name, ("", None))
        if how in ("ts", "opt_ts"):
            lines.append(f"    v{i} = _{how}(t[{i}])")
        elif how in ("enum", "opt_enum"):
            assert kind is not None
            namespace[f"_K{i}"], namespace[f"_M{i}"] = kind, members(kind, epoch)
            slow = f"_{how}(_K{i}, t[{i}], _epoch, _rec(t), {name!r})"
            test = f"v{i} is None" + (f" and t[{i}] is not None" if how == "opt_enum" else "")
            lines.append(f"    v{i} = _M{i}.get(t[{i}])\n    if {test}:\n        v{i} = {slow}")
        else:
            lines.append(f"    v{i} = t[{i}]")
    args = ", ".join(f"v{i}" for i in range(len(names)))
    source = "def mapper(t):\n" + "\n".join(lines) + f"\n    return _new({args})\n"
    exec(source, namespace)
    return namespace["mapper"]  # type: ignore[no-any-return]
