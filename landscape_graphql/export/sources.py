"""The paginator: one loop over pages, whatever the transport and whatever is exported.

A `Source` answers one page at a time: the records (each its canonical line, and the objects
when they are at hand), the cursor of the next page, whether there is one. Three sources:

- `RunTableSource`: a run's records read in-process, table by table (`db/export.py`), through
  the same read-only engine and request session the server uses (no HTTP, no GraphQL layer:
  a run has millions of records and GraphQL's per-object work would dominate).
- `QuerySource` over `InProcessExecutor` (the schema executed in this process) or
  `HttpExecutor` (POSTs with a bearer token): the one connection of a query, paged by `$after`.
  A run export over HTTP is this, with the API's `Run.exportRecords` connection.

Finding the connection is strict: it is the field that selects `pageInfo { hasNextPage
endCursor }` and takes `$after`. None, or several without `--path`, is refused: a short export
that looks complete is the failure this tool exists to prevent.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)

from ..canonical import canonical, canonical_columns
from ..db.export import ExportCursor, export_page
from .manifest import ExportError


@dataclass
class Page:
    lines: list[bytes]  # each record's canonical JSON
    objects: list[dict[str, Any]] | None  # the same records as objects, when at hand
    end_cursor: str | None
    has_next_page: bool
    total: int | None = None


class Source:
    async def page(self, after: str | None) -> Page:
        raise NotImplementedError


# ----------------------------------------------------------------------------- run, in-process

class RunTableSource(Source):
    def __init__(self, landscape: Any, run_id: str, page_size: int,
                 decorate: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
                 render: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None) -> None:
        self.landscape = landscape
        self.run_id = run_id
        self.page_size = page_size
        self.decorate = decorate
        # How a stored row becomes a record (None: the format has no such record type); without
        # one, the record is the row as JSON (`ExportSegment.json_columns`).
        self.render = render

    async def page(self, after: str | None) -> Page:
        from ..db.session import DbSession
        db = DbSession(self.landscape)
        cursor = ExportCursor.decode(after) if after else None
        got = await export_page(db, self.run_id, cursor, self.page_size)
        lines: list[bytes] = []
        objects: list[dict[str, Any]] = []
        for segment in got.segments:
            if self.render is None:
                segment_lines, segment_objects = canonical_columns(segment.keys, segment.json_columns())
                lines += segment_lines
                objects += segment_objects
            else:
                rendered = (self.render(segment.record_type, values) for values in segment.stored())
                objects += [o for o in rendered if o is not None]
        if self.decorate is not None:
            await self.decorate(objects)
        if self.decorate is not None or self.render is not None:
            lines = list(map(canonical, objects))
        end = got.end_cursor.encode() if got.end_cursor is not None else after
        return Page(lines, objects, end, got.has_next_page)


# ----------------------------------------------------------------------------- queries

Executor = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class InProcessExecutor:
    def __init__(self, landscape: Any, settings: Any, payload_roots: Sequence[str] = ()) -> None:
        from ..schema import build_schema
        self.landscape = landscape
        self.settings = settings
        self.schema = build_schema(settings)
        self.payload_roots = tuple(payload_roots)

    async def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        from ..context import Context
        from ..error_masking import format_errors
        from ..payloads import ByteBudget, PayloadStore
        extra: dict[str, Any] = {}
        if self.payload_roots:
            extra = {"payload_store": PayloadStore(self.payload_roots), "payload_budget": ByteBudget()}
        context = Context.create(self.landscape, self.settings, **extra)
        async with context.held_connections():
            result = await self.schema.execute(query, variable_values=variables, context_value=context)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = format_errors(result.errors)
        return out


class HttpExecutor:
    def __init__(self, url: str, token: str | None, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/graphql"):
            self.url += "/graphql"
        self.token = token
        self.timeout_s = timeout_s

    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload: dict[str, Any] = orjson.loads(response.read())
                return payload
        except urllib.error.HTTPError as exc:
            raise ExportError(f"{self.url} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ExportError(f"cannot reach {self.url}: {exc}") from None
        except orjson.JSONDecodeError:
            raise ExportError(f"{self.url} did not answer JSON") from None

    async def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps({"query": query, "variables": variables})
        return await asyncio.to_thread(self._post, body)


@dataclass
class ConnectionSpec:
    """Where the one paged connection of a query is, and what its nodes select."""

    path: list[str]  # response keys from `data` down to the connection
    via_edges: bool  # nodes are under edges { node }
    columns: list[str] = field(default_factory=list)


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _fields(selection: SelectionSetNode | None) -> list[FieldNode]:
    if selection is None:
        return []
    out: list[FieldNode] = []
    for s in selection.selections:
        if isinstance(s, FieldNode):
            out.append(s)
        else:
            raise ExportError("fragments are not supported in an export query: write the fields out", 2)
    return out


def _selects_page_info(node: FieldNode) -> bool:
    for f in _fields(node.selection_set):
        if f.name.value == "pageInfo":
            names = {g.name.value for g in _fields(f.selection_set)}
            return {"hasNextPage", "endCursor"} <= names
    return False


def _takes_after(node: FieldNode) -> bool:
    return any(a.name.value == "after" and isinstance(a.value, VariableNode) and a.value.name.value == "after"
               for a in node.arguments or ())


def _columns(selection: SelectionSetNode | None, prefix: str = "") -> list[str]:
    cols: list[str] = []
    for f in _fields(selection):
        name = prefix + _key(f)
        if f.selection_set is None:
            cols.append(name)
        else:
            cols.extend(_columns(f.selection_set, name + "."))
    return cols


def find_connection(query: str, path: str | None) -> ConnectionSpec:
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise ExportError(f"the query does not parse: {exc.message}", 2) from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise ExportError("the query must hold exactly one operation", 2)
    operation = operations[0]
    if not any(v.variable.name.value == "after" for v in operation.variable_definitions or ()):
        raise ExportError("the query declares no $after variable: it cannot be paged, and one page "
                          "is not an export", 2)
    found: list[tuple[list[str], FieldNode]] = []
    partial: list[str] = []

    def walk(selection: SelectionSetNode | None, trail: list[str]) -> None:
        for f in _fields(selection):
            here = [*trail, _key(f)]
            if _selects_page_info(f):
                if _takes_after(f):
                    found.append((here, f))
                else:
                    partial.append(".".join(["data", *here]))
            walk(f.selection_set, here)

    walk(operation.selection_set, [])
    if path is not None:
        wanted = path.split(".")
        if wanted and wanted[0] == "data":
            wanted = wanted[1:]
        others = [".".join(["data", *c[0]]) for c in found if c[0] != wanted]
        found = [c for c in found if c[0] == wanted]
        if found and others:
            raise ExportError(f"{', '.join(others)} also takes after: $after and would be paged with {path}'s "
                              "cursors: give it a variable of its own", 2)
        if not found:
            raise ExportError(f"no connection at {path} selects pageInfo {{ hasNextPage endCursor }} "
                              "and takes after: $after", 2)
    if not found:
        extra = f" ({', '.join(partial)} selects pageInfo but does not take after: $after)" if partial else ""
        raise ExportError("the query has no connection to page through: none selects pageInfo { hasNextPage "
                          f"endCursor }} and takes after: $after{extra}", 2)
    if len(found) > 1:
        listed = ", ".join(".".join(["data", *p]) for p, _ in found)
        raise ExportError(f"the query has {len(found)} paged connections ({listed}): choose one with --path", 2)
    trail, node = found[0]
    fields = {f.name.value: f for f in _fields(node.selection_set)}
    if "nodes" in fields:
        return ConnectionSpec(trail, False, _columns(fields["nodes"].selection_set))
    if "edges" in fields:
        inner = {f.name.value: f for f in _fields(fields["edges"].selection_set)}
        if "node" in inner:
            return ConnectionSpec(trail, True, _columns(inner["node"].selection_set))
    raise ExportError(f"the connection at data.{'.'.join(trail)} selects neither nodes nor edges {{ node }}", 2)


class QuerySource(Source):
    def __init__(self, execute: Executor, query: str, variables: dict[str, Any], spec: ConnectionSpec,
                 lines_field: str | None = None) -> None:
        self.execute = execute
        self.query = query
        self.variables = variables
        self.spec = spec
        # A connection field holding the page's records as canonical JSON lines already
        # (Run.exportRecords.jsonl), so no node is resolved, sent or parsed one by one.
        self.lines_field = lines_field

    async def page(self, after: str | None) -> Page:
        answer = await self.execute(self.query, {**self.variables, "after": after})
        errors = answer.get("errors")
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code", "ERROR")
            raise ExportError(f"the server refused a page ({code}): {first.get('message')}")
        value: Any = answer.get("data")
        for i, key in enumerate(self.spec.path):
            if not isinstance(value, dict):
                raise ExportError(f"data.{'.'.join(self.spec.path[:i])} is a list or missing: "
                                  "the connection must be reached through single objects")
            value = value.get(key)
        if value is None:
            raise ExportError(f"data.{'.'.join(self.spec.path)} is null: the object it belongs to does not exist")
        info = value["pageInfo"]
        has_next = bool(info["hasNextPage"])
        end = info.get("endCursor") or after
        if has_next and end == after:
            raise ExportError("the server said another page follows but gave no new cursor")
        if self.lines_field is not None:
            text = value[self.lines_field]
            # JSON escapes every newline inside a string: the page splits into records on "\n".
            lines = text.encode().split(b"\n")[:-1] if text else []
            return Page(lines, None, end, has_next, value.get("totalCount"))
        nodes = [e["node"] for e in value.get("edges") or []] if self.spec.via_edges else value.get("nodes") or []
        return Page(list(map(canonical, nodes)), nodes, end, has_next, value.get("totalCount"))
