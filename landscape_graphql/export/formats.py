"""Output formats: jsonl (the canonical lines themselves), json (a streamed array), csv.

Every format writes one record's bytes at a time, so memory stays flat. The JSON array puts
one record per line (`[`, then `record`, `,record`, …, `]`), so a verifier can still read it
line by line and a chunk's byte offsets still point at whole records.

CSV columns are known before the first row (from the query's selection set, or from the table
models for a run), nested objects become dot paths, lists JSON text, and `--explode PATH`
repeats a record once per element of one list. Lines end CRLF and fields are quoted as RFC
4180 says. `--excel-safe` prefixes a cell starting with `= + - @` (or tab/CR) with `'` so a
spreadsheet does not run it as a formula; it is off by default because it changes the data:
`-5` would no longer read back as `-5`, and an audit export must say what the database says.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

FORMATS = ("jsonl", "json", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RecordFormat:
    name = "jsonl"
    # Whether a record's bytes in the output are its canonical line (so chunks can be re-read).
    line_based = True

    def header(self) -> bytes:
        return b""

    def encode(self, index: int, line: bytes, record: dict[str, Any] | None) -> bytes:
        return line + b"\n"

    def footer(self, count: int) -> bytes:
        return b""


class JsonArrayFormat(RecordFormat):
    name = "json"

    def header(self) -> bytes:
        return b"[\n"

    def encode(self, index: int, line: bytes, record: dict[str, Any] | None) -> bytes:
        return (b"," if index else b"") + line + b"\n"

    def footer(self, count: int) -> bytes:
        return b"]\n"


def strip_line(fmt: str, raw: bytes) -> bytes:
    """The canonical record in one output line (inverse of `encode`)."""
    line = raw.rstrip(b"\n")
    if fmt == "json" and line.startswith(b","):
        return line[1:]
    return line


def _flatten(value: Any, prefix: str, out: dict[str, Any], leaves: frozenset[str] = frozenset()) -> None:
    # A column the selection set names as a leaf (a JSON scalar) stays one cell, as JSON text.
    if isinstance(value, dict) and prefix not in leaves:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else key, out, leaves)
    else:
        out[prefix] = value


def _cell(value: Any, excel_safe: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, dict)):
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    else:
        text = str(value)
    if excel_safe and text.startswith(_FORMULA_START):
        text = "'" + text
    return text


class CsvFormat(RecordFormat):
    name = "csv"
    line_based = False

    def __init__(self, columns: Sequence[str], explode: str | None = None, excel_safe: bool = False) -> None:
        self.columns = list(columns)
        self.leaves = frozenset(columns)
        self.explode = explode
        self.excel_safe = excel_safe

    def _row(self, values: Sequence[str]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(values)
        return buf.getvalue().encode("utf-8")

    def header(self) -> bytes:
        return self._row(self.columns)

    def encode(self, index: int, line: bytes, record: dict[str, Any] | None) -> bytes:
        if record is None:
            record = orjson.loads(line)
        flat: dict[str, Any] = {}
        explode = self.explode
        items: list[Any] = [None]
        if explode is not None:
            # Walk to the list by its dot path; each element becomes a row of its own.
            parent: Any = record
            *head, last = explode.split(".")
            for part in head:
                parent = parent.get(part) if isinstance(parent, dict) else None
            listed = parent.pop(last, None) if isinstance(parent, dict) else None
            items = list(listed) if isinstance(listed, list) and listed else [None]
        _flatten(record, "", flat, self.leaves)
        out = b""
        for item in items:
            row = dict(flat)
            if explode is not None and item is not None:
                element: dict[str, Any] = {}
                _flatten(item if isinstance(item, dict) else {"": item}, explode, element, self.leaves)
                row.update({k.rstrip("."): v for k, v in element.items()})
            out += self._row([_cell(row.get(c), self.excel_safe) for c in self.columns])
        return out


def make_format(name: str, columns: Sequence[str] = (), explode: str | None = None,
                excel_safe: bool = False) -> RecordFormat:
    if name == "json":
        return JsonArrayFormat()
    if name == "csv":
        return CsvFormat(columns, explode, excel_safe)
    return RecordFormat()
