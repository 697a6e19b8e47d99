"""Completing one root field's value breadth-first, with the plans (see executor.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLOutputType,
    GraphQLResolveInfo,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    located_error,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, is_iterable
from graphql.pyutils import inspect as graphql_inspect

from ._jobs import _DEFERRED, _await_item, _Job, _LazyInfo, _nodes, _Pos, _real, _RelationGroup, _set_none
from .leaves import MISS
from .plans import PLAIN, TYPENAME, FieldPlan, ObjectPlan
from .relations import Relation

if TYPE_CHECKING:
    from .executor import FastExecutor


class _Completion:
    """Completes one root field's value: synchronously where it can, else by driving jobs."""

    def __init__(self, executor: FastExecutor, position_context: Any) -> None:
        self.ex = executor
        self.position_context = position_context
        self.propagate = executor.error_propagation
        self.errors = executor.collected_errors
        self.is_awaitable = executor.is_awaitable
        self.ready: list[Any] = []  # _Job and _RelationGroup to start
        self.open_groups: dict[int, _RelationGroup] = {}  # relation groups still taking entries
        self.loaders = getattr(executor.context_value, "loaders", None)
        self.nulled = False  # a position was nulled: check liveness before resuming work
        self.root: _Pos | None = None
        self.root_error: GraphQLError | None = None

    # -- the boundary --------------------------------------------------------------------------

    def run(self, return_type: GraphQLOutputType, details: FieldDetailsList, info: GraphQLResolveInfo[Any],
            path: Path, result: Any) -> Any:
        holder: list[Any] = [None]
        self.root = _Pos(holder, 0, None, return_type, details, path, None)
        # Errors that reach the root are raised to graphql-core, which handles them at this
        # field or list item exactly as it would have handled its own completion's.
        self.complete(holder, 0, return_type, details, info, path, result, self.root)
        if not self.ready:
            return holder[0]
        return self.drive(holder)

    async def drive(self, holder: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        parked: dict[int, tuple[Any, list[tuple[_Job, Any]]]] = {}
        woken: list[Any] = []
        wake: asyncio.Future[None] | None = None

        def on_done(future: Any) -> None:
            woken.append(future)
            if wake is not None and not wake.done():
                wake.set_result(None)

        def busy() -> bool:
            """Whether a finished future is still to be resumed from (see _gate.py)."""
            if woken:
                return True
            for future, _jobs in parked.values():
                if future.done():
                    return True
                # A gather (load_many) is done only once its children's callbacks have run.
                children = getattr(future, "_children", None)
                if children and all(child.done() for child in children):
                    return True
            return False

        # Loads started by the resolvers this task drives wait for the gate (_gate.py).
        gate = self.ex.batch_gate
        gated = getattr(self.loaders, "gated", None)
        gate.busy.append(busy)
        try:
            with gated(gate) if gated is not None else contextlib.nullcontext():
                try:
                    while True:
                        while self.ready:
                            self.open_groups.clear()
                            batch, self.ready = self.ready, []
                            for job in batch:
                                if self.root_error is not None:
                                    self.cancel(job)
                                else:
                                    self.start(job, parked, on_done)
                        if self.root_error is not None:
                            for _, jobs in parked.values():
                                for _job, coro in jobs:
                                    self.cancel_coroutine(coro)
                            parked.clear()
                            raise self.root_error
                        if not parked:
                            return holder[0]
                        if not woken:
                            wake = loop.create_future()
                            await wake
                            wake = None
                        done, woken[:] = list(woken), []
                        for future in done:
                            entry = parked.pop(id(future), None)
                            if entry is None:
                                continue
                            for job, coro in entry[1]:
                                self.resume(job, coro, future, parked, on_done)
                except BaseException:
                    for _, jobs in parked.values():
                        for _job, coro in jobs:
                            self.cancel_coroutine(coro)
                    raise
        finally:
            gate.busy.remove(busy)

    # -- driving coroutines -------------------------------------------------------------------

    def start(self, job: Any, parked: dict[int, Any], on_done: Callable[[Any], None]) -> None:
        if type(job) is _RelationGroup:
            self.group_wait(job, parked, on_done)
            return
        awaitable = job.awaitable
        if asyncio.iscoroutine(awaitable):
            self.step(job, awaitable, parked, on_done)
            return
        future = awaitable if asyncio.isfuture(awaitable) else asyncio.ensure_future(awaitable)
        self.park(job, None, future, parked, on_done)

    def park(self, job: _Job | _RelationGroup, coro: Any, future: Any, parked: dict[int, Any],
             on_done: Callable[[Any], None]) -> None:
        entry = parked.get(id(future))
        if entry is None:
            parked[id(future)] = (future, [(job, coro)])
            future.add_done_callback(on_done)
        else:
            entry[1].append((job, coro))

    def resume(self, job: Any, coro: Any, future: Any, parked: dict[int, Any],
               on_done: Callable[[Any], None]) -> None:
        if type(job) is _RelationGroup:
            if self.root_error is None:
                self.group_wait(job, parked, on_done)
            return
        if self.root_error is not None or (self.nulled and not self.alive(job.pos)):
            # graphql-core cancels the work under a nulled position.
            if coro is not None:
                self.cancel_coroutine(coro)
            return
        if coro is not None:
            self.step(job, coro, parked, on_done)
            return
        try:
            value = future.result()
        except Exception as error:
            self.fail(job, error)
            return
        self.resolved(job, value)

    def step(self, job: _Job, coro: Any, parked: dict[int, Any], on_done: Callable[[Any], None]) -> None:
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            self.resolved(job, stop.value)
            return
        except Exception as error:
            self.fail(job, error)
            return
        blocking = getattr(yielded, "_asyncio_future_blocking", None)
        if blocking is not None:
            yielded._asyncio_future_blocking = False
            self.park(job, coro, yielded, parked, on_done)
        elif yielded is None:
            # A bare yield (asyncio.sleep(0)): resume on the loop's next turn, as a task would.
            future = asyncio.get_running_loop().create_future()
            future.get_loop().call_soon(_set_none, future)
            self.park(job, coro, future, parked, on_done)
        else:
            coro.close()
            self.fail(job, RuntimeError(f"Task got bad yield: {yielded!r}"))

    @staticmethod
    def cancel_coroutine(coro: Any) -> None:
        if coro is None:
            return
        try:
            coro.throw(asyncio.CancelledError())
        except (asyncio.CancelledError, StopIteration):
            return
        except Exception:
            return
        coro.close()

    def cancel(self, job: Any) -> None:
        if type(job) is _Job and asyncio.iscoroutine(job.awaitable):
            job.awaitable.close()

    # -- relation fields -----------------------------------------------------------------------

    def relation_field(self, d: dict[str, Any], field: FieldPlan, relation: Relation[Any, Any, Any],
                       plan: ObjectPlan, source: Any, obj_path: Path, pos: _Pos | None) -> None:
        """Start loading a relation field's value: its resolver's first step, for many parents."""
        field_path = Path(obj_path, field.name, plan.object_type.name)
        try:
            future = relation.start(self.loaders, source)
            if future is None:  # no key: the resolver returns None
                self.complete(d, field.name, field.return_type, field.details,
                              self.info(field, plan, field_path), field_path, None, pos)
                return
        except Exception as raw_error:
            self.field_error(raw_error, d, field, field_path)
            return
        d[field.name] = None
        group = self.open_groups.get(id(field))
        if group is None:
            group = self.open_groups[id(field)] = _RelationGroup(field, relation, plan)
            self.ready.append(group)
        group.entries.append((future, d, source, field_path, pos))

    def group_wait(self, group: _RelationGroup, parked: dict[int, Any], on_done: Callable[[Any], None]) -> None:
        entries = group.entries
        for index in range(group.cursor, len(entries)):
            future = entries[index][0]
            if not future.done():
                group.cursor = index
                self.park(group, None, future, parked, on_done)
                return
        self.group_done(group)

    def group_done(self, group: _RelationGroup) -> None:
        field, plan, finish = group.field, group.plan, group.relation.finish
        name, return_type, leaf, nullable = field.name, field.return_type, field.leaf, field.nullable
        list_item, list_object = field.list_item_type, field.list_object_type
        for future, d, source, field_path, pos in group.entries:
            if self.nulled and not self.alive(pos):
                continue  # graphql-core cancels the resolvers under a nulled position
            try:
                value = finish(source, future.result())
                if value is None and nullable:
                    d[name] = None
                    continue
                if leaf is not None and value is not None:
                    coerced = leaf(value)
                    if coerced is not MISS:
                        d[name] = coerced
                        continue
                if list_object is not None and list_item is not None and type(value) is list:
                    # complete() for a list of objects, without re-deciding what it is.
                    out: list[Any] = []
                    d[name] = out
                    self.complete_object_items(out, list_item, list_object, field.details,
                                               self.info(field, plan, field_path), field_path, value, pos,
                                               d, name, return_type)
                    continue
                self.complete(d, name, return_type, field.details, self.info(field, plan, field_path),
                              field_path, value, pos)
            except Exception as raw_error:
                self.fail_at(raw_error, d, name, return_type, field.nodes, field_path, pos)

    def info(self, field: FieldPlan, plan: ObjectPlan, field_path: Path) -> Any:
        return _LazyInfo(self.ex, field, plan, field_path)

    def fail_at(self, raw_error: Exception, container: Any, key: Any, return_type: GraphQLOutputType,
                nodes: list[Any], path: Path, pos: _Pos | None) -> None:
        """graphql-core's handle_field_error for a value completed after the fact."""
        error = located_error(raw_error, nodes, path.as_list())
        if not (self.propagate and is_non_null_type(return_type)):
            self.errors.add(error, path)
            container[key] = None
            self.nulled = True
            return
        self.raise_to(error, pos)

    # -- results of jobs ------------------------------------------------------------------------

    def resolved(self, job: _Job, value: Any) -> None:
        if job.settled:
            if value is None and job.non_null is not None:
                self.fail(job, TypeError(job.non_null))
                return
            job.container[job.key] = value
            return
        try:
            self.complete(job.container, job.key, job.return_type, job.details, job.info, job.path,
                          value, job.pos)
        except Exception as error:
            self.fail(job, error)

    def fail(self, job: _Job, raw_error: Exception) -> None:
        """graphql-core's handle_field_error at the job's position, propagated by hand."""
        self.fail_at(raw_error, job.container, job.key, job.return_type, _nodes(job.details), job.path,
                     job.pos)

    def raise_to(self, error: GraphQLError, pos: _Pos | None) -> None:
        self.nulled = True
        while pos is not None:
            if pos is self.root:
                self.root_error = error
                return
            if not self.alive(pos):
                return  # already abandoned: graphql-core would have cancelled this work
            if not (self.propagate and is_non_null_type(pos.return_type)):
                self.errors.add(error, pos.path)
                pos.container[pos.key] = None
                return
            pos = pos.parent
        self.root_error = error  # pragma: no cover - every chain ends at the root

    def alive(self, pos: _Pos | None) -> bool:
        while pos is not None and pos is not self.root:
            if pos.container[pos.key] is not pos.value:
                return False
            pos = pos.parent
        return True

    # -- completion ---------------------------------------------------------------------------

    def complete(self, container: Any, key: Any, return_type: GraphQLOutputType,
                 details: FieldDetailsList, info: Any, path: Path, result: Any, parent: _Pos | None,
                 position_type: GraphQLOutputType | None = None) -> None:
        """graphql-core's complete_value, writing into container[key]; raises what it raises.

        `position_type` is the type of the field or list item being completed (with its
        non-null wrapper, which `return_type` loses on the way down)."""
        if isinstance(result, Exception):
            raise result
        if is_non_null_type(return_type):
            self.complete(container, key, return_type.of_type, details, info, path, result, parent,
                          return_type)
            value = container[key]
            message = f"Cannot return null for non-nullable field {info.parent_type}.{info.field_name}."
            if value is _DEFERRED:
                # graphql-core completes it; the job checks for null when it settles.
                job = self.ready[-1]
                job.non_null, job.return_type = message, return_type
                return
            if value is None:
                raise TypeError(message)
            return
        if position_type is None:
            position_type = return_type
        if result is None or result is Undefined:
            container[key] = None
            return
        if is_list_type(return_type):
            self.complete_list(container, key, return_type, details, info, path, result, parent,
                               position_type)
            return
        if is_leaf_type(return_type):
            container[key] = self.ex.complete_leaf_value(return_type, result)
            return
        if is_abstract_type(return_type):
            resolve_type = return_type.resolve_type or self.ex.type_resolver
            info = _real(info)
            runtime = resolve_type(result, info, return_type)
            if self.is_awaitable(runtime):
                self.defer_stock(container, key, return_type, details, info, path, result, parent, runtime)
                return
            object_type = self.ex.ensure_valid_runtime_type(runtime, return_type, details, info, result)
            self.complete_object(container, key, object_type, position_type, details, info, path, result,
                                 parent)
            return
        if is_object_type(return_type):
            self.complete_object(container, key, return_type, position_type, details, info, path, result,
                                 parent)
            return
        # Not reachable: all output types have been considered.
        container[key] = self.ex.stock_complete_value(  # pragma: no cover
            return_type, details, info, path, result, self.position_context)

    def defer_stock(self, container: Any, key: Any, return_type: GraphQLOutputType,
                    details: FieldDetailsList, info: Any, path: Path, result: Any,
                    parent: _Pos | None, awaitable_type: Any) -> None:
        """An abstract type resolved asynchronously: graphql-core completes it."""
        if asyncio.iscoroutine(awaitable_type):
            awaitable_type.close()
        self.settle_stock(container, key, return_type, details, info, path, parent,
                          self.ex.stock_complete_value(return_type, details, _real(info), path, result,
                                                       self.position_context))

    def settle_stock(self, container: Any, key: Any, return_type: GraphQLOutputType,
                     details: FieldDetailsList, info: Any, path: Path, parent: _Pos | None,
                     completed: Any) -> None:
        """Place graphql-core's completion of a value: now, or when its awaitable settles."""
        if self.is_awaitable(completed):
            container[key] = _DEFERRED
            self.ready.append(_Job(completed, container, key, return_type, details, info, path, parent,
                                   settled=True))
        else:
            container[key] = completed

    def complete_list(self, container: Any, key: Any, return_type: GraphQLList[Any],
                      details: FieldDetailsList, info: Any, path: Path, result: Any,
                      parent: _Pos | None, position_type: GraphQLOutputType) -> None:
        ex = self.ex
        if ex.is_async_iterable(result) or not is_iterable(result):
            # graphql-core's own handling (and its error for a non-iterable).
            self.settle_stock(container, key, return_type, details, info, path, parent,
                              ex.stock_complete_value(return_type, details, _real(info), path, result,
                                                      self.position_context))
            return
        item_type = return_type.of_type
        out: list[Any] = []
        container[key] = out
        named = item_type.of_type if is_non_null_type(item_type) else item_type
        if is_object_type(named):
            self.complete_object_items(out, item_type, named, details, info, path, result, parent,
                                       container, key, position_type)
            return
        pos: _Pos | None = None
        for index, item in enumerate(result):
            out.append(None)
            item_path = path.add_key(index, None)
            if self.is_awaitable(item):
                if pos is None:
                    pos = _Pos(container, key, out, position_type, details, path, parent)
                self.ready.append(_Job(_await_item(item), out, index, item_type, details, info,
                                       item_path, pos))
                continue
            try:
                if pos is None and not is_leaf_type(named):
                    pos = _Pos(container, key, out, position_type, details, path, parent)
                self.complete(out, index, item_type, details, info, item_path, item, pos)
            except Exception as raw_error:
                self.item_error(raw_error, out, index, item_type, details, item_path)

    def item_error(self, raw_error: Exception, out: list[Any], index: int, item_type: GraphQLOutputType,
                   details: FieldDetailsList, item_path: Path) -> None:
        error = located_error(raw_error, _nodes(details), item_path.as_list())
        if self.propagate and is_non_null_type(item_type):
            raise error
        self.errors.add(error, item_path)
        out[index] = None
        self.nulled = True

    def complete_object_items(self, out: list[Any], item_type: GraphQLOutputType, object_type: Any,
                              details: FieldDetailsList, info: Any, path: Path, items: Iterable[Any],
                              parent: _Pos | None, container: Any, key: Any,
                              list_type: GraphQLOutputType) -> None:
        """A list of objects of one type: the common case, in one loop with the type's plan."""
        plan = self.ex.plan(object_type, details)
        is_type_of = object_type.is_type_of
        list_pos: _Pos | None = None
        if plan.deferrable:
            list_pos = _Pos(container, key, out, list_type, details, path, parent)
        index = 0
        for item in items:
            out.append(None)
            if item is None or item is Undefined or isinstance(item, Exception) or self.is_awaitable(item):
                self.item_slow(out, index, item_type, details, info, path, item, list_pos)
                index += 1
                continue
            if is_type_of is not None:
                ok = is_type_of(item, info)
                if ok is not True:
                    # Awaitable or false: graphql-core's path raises or awaits it.
                    self.item_slow(out, index, item_type, details, info, path, item, list_pos)
                    index += 1
                    continue
            try:
                if plan.flat:
                    out[index] = self.flat_object(plan, item, None, path, index)
                else:
                    item_path = path.add_key(index, None)
                    self.fill_object(out, index, plan, item, item_path, item_type, details, list_pos)
            except Exception as raw_error:
                self.item_error(raw_error, out, index, item_type, details, path.add_key(index, None))
            index += 1

    def item_slow(self, out: list[Any], index: int, item_type: GraphQLOutputType, details: FieldDetailsList,
                  info: Any, path: Path, item: Any, list_pos: _Pos | None) -> None:
        item_path = path.add_key(index, None)
        if self.is_awaitable(item):
            self.ready.append(_Job(_await_item(item), out, index, item_type, details, info, item_path,
                                   list_pos))
            return
        try:
            self.complete(out, index, item_type, details, info, item_path, item, list_pos)
        except Exception as raw_error:
            self.item_error(raw_error, out, index, item_type, details, item_path)

    def complete_object(self, container: Any, key: Any, object_type: Any, position_type: GraphQLOutputType,
                        details: FieldDetailsList, info: Any, path: Path, result: Any,
                        parent: _Pos | None) -> None:
        if object_type.is_type_of is not None:
            ok = object_type.is_type_of(result, info)
            if self.is_awaitable(ok):
                self.defer_is_type_of(container, key, object_type, position_type, details, info, path,
                                      result, parent, ok)
                return
            if not ok:
                raise GraphQLError(f"Expected value of type '{object_type}' but got: {graphql_inspect(result)}.",
                                   _nodes(details))
        plan = self.ex.plan(object_type, details)
        if plan.flat:
            container[key] = self.flat_object(plan, result, path, None, None)
            return
        self.fill_object(container, key, plan, result, path, position_type, details, parent)

    def defer_is_type_of(self, container: Any, key: Any, object_type: Any, position_type: GraphQLOutputType,
                         details: FieldDetailsList, info: Any, path: Path, result: Any,
                         parent: _Pos | None, pending: Any) -> None:
        if asyncio.iscoroutine(pending):
            pending.close()
        self.settle_stock(container, key, object_type, details, info, path, parent,
                          self.ex.stock_complete_value(object_type, details, _real(info), path, result,
                                                       self.position_context))

    def flat_object(self, plan: ObjectPlan, source: Any, path: Path | None, list_path: Path | None,
                    index: int | None) -> dict[str, Any]:
        """An object of plain leaf fields. Any value the fast coercers do not take is
        completed the general way, raising (with a path) what graphql-core raises."""
        builder = plan.builder
        if builder is not None:
            try:
                return builder(source)
            except Exception:
                pass
        d: dict[str, Any] = {}
        for field in plan.fields:
            if field.kind == TYPENAME:
                d[field.name] = plan.object_type.name
                continue
            value = field.getter(source)
            if value is None:
                if field.nullable:
                    d[field.name] = None
                    continue
            elif field.leaf is not None:
                coerced = field.leaf(value)
                if coerced is not MISS:
                    d[field.name] = coerced
                    continue
            if path is None:
                assert list_path is not None and index is not None
                path = list_path.add_key(index, None)
            self.plain_leaf_slow(d, field, plan, value, path)
        return d

    def plain_leaf_slow(self, d: dict[str, Any], field: FieldPlan, plan: ObjectPlan, value: Any,
                        obj_path: Path) -> None:
        field_path = Path(obj_path, field.name, plan.object_type.name)
        try:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                if not field.nullable:
                    raise TypeError("Cannot return null for non-nullable field"
                                    f" {plan.object_type.name}.{field.field_name}.")
                d[field.name] = None
                return
            leaf_type: Any = get_nullable_type(field.return_type)
            d[field.name] = self.ex.complete_leaf_value(leaf_type, value)
        except Exception as raw_error:
            self.field_error(raw_error, d, field, field_path)

    def field_error(self, raw_error: Exception, d: dict[str, Any], field: FieldPlan, field_path: Path) -> None:
        error = located_error(raw_error, field.nodes, field_path.as_list())
        if self.propagate and not field.nullable:
            raise error
        self.errors.add(error, field_path)
        d[field.name] = None
        self.nulled = True

    def fill_object(self, container: Any, key: Any, plan: ObjectPlan, source: Any, path: Path,
                    position_type: GraphQLOutputType, details: FieldDetailsList, parent: _Pos | None) -> None:
        """An object with resolver or object-valued fields: graphql-core's execute_fields."""
        builder = plan.builder
        d: dict[str, Any] | None = None
        if builder is not None:
            try:
                d = builder(source)
            except Exception:
                d = None
        if d is None:
            self.fill_object_slowly(container, key, plan, source, path, position_type, details, parent)
            return
        container[key] = d
        pos = _Pos(container, key, d, position_type, details, path, parent) if plan.deferrable else parent
        type_name = plan.object_type.name
        for field in plan.complex:
            if field.relation is not None:
                self.relation_field(d, field, field.relation, plan, source, path, pos)
                continue
            self.execute_field(d, field, plan, source, Path(path, field.name, type_name), pos)

    def fill_object_slowly(self, container: Any, key: Any, plan: ObjectPlan, source: Any, path: Path,
                           position_type: GraphQLOutputType, details: FieldDetailsList,
                           parent: _Pos | None) -> None:
        """fill_object field by field, in selection order, each leaf coerced on its own."""
        d: dict[str, Any] = {}
        container[key] = d
        pos = _Pos(container, key, d, position_type, details, path, parent) if plan.deferrable else parent
        type_name = plan.object_type.name
        for field in plan.fields:
            kind = field.kind
            if kind == TYPENAME:
                d[field.name] = type_name
                continue
            if kind == PLAIN and field.is_leaf:
                value = field.getter(source)
                if value is None:
                    if field.nullable:
                        d[field.name] = None
                        continue
                elif field.leaf is not None:
                    coerced = field.leaf(value)
                    if coerced is not MISS:
                        d[field.name] = coerced
                        continue
                self.plain_leaf_slow(d, field, plan, value, path)
                continue
            if field.relation is not None:
                self.relation_field(d, field, field.relation, plan, source, path, pos)
                continue
            field_path = Path(path, field.name, type_name)
            self.execute_field(d, field, plan, source, field_path, pos)

    def execute_field(self, d: dict[str, Any], field: FieldPlan, plan: ObjectPlan, source: Any,
                      field_path: Path, pos: _Pos | None) -> None:
        ex = self.ex
        info = ex.build_resolve_info(field.field_def, field.nodes, plan.object_type, field_path)
        try:
            if field.kind == PLAIN:
                result = field.getter(source)
            elif field.direct is not None:
                kwargs: dict[str, Any] = {}
                if field.direct_parent is not None:
                    kwargs[field.direct_parent] = source
                if field.direct_info is not None:
                    kwargs[field.direct_info] = ex.strawberry_info(info, field.strawberry_field)
                result = field.direct(source, **kwargs) if field.direct_self else field.direct(**kwargs)
            else:
                args = field.args
                if args is None:
                    details = field.details[0]
                    args = get_argument_values(field.field_def, details.node, ex.variable_values,
                                               details.fragment_variable_values, ex.hide_suggestions)
                result = field.resolve(source, info, **args)
            if self.is_awaitable(result):
                d[field.name] = None
                self.ready.append(_Job(result, d, field.name, field.return_type, field.details, info,
                                       field_path, pos))
                return
            if field.leaf is not None and result is not None:
                coerced = field.leaf(result)
                if coerced is not MISS:
                    d[field.name] = coerced
                    return
            self.complete(d, field.name, field.return_type, field.details, info, field_path, result, pos)
        except Exception as raw_error:
            self.field_error(raw_error, d, field, field_path)
