"""An executor that completes values breadth-first, with per-selection plans.

graphql-core completes a response depth-first: for every object it builds an info, resolves
every field through Strawberry's wrapper, and wraps every awaitable field in coroutines and a
task of its own, gathering them object by object. For the lists an audit export returns (500
tokens, each with its node states, outcome and parents) that machinery costs far more than the
data. `FastExecutor` keeps graphql-core's operation handling (root fields, variables, errors)
and replaces value completion (`complete_value`) below each root field:

* each (object type, selection set) gets a plan once (see `plans.py`): plain attributes are read
  and coerced in one loop, without an info, a path or a resolver call;
* resolvers are called as Strawberry would (directly when its wrapper would add nothing), and
  the coroutines they return are all driven by one task per root field, which resumes each one
  when the future it waits on is done; completing their results may start more, so a whole
  level of the response is resolved together, which is also how DataLoader batches them.

The response, errors and nulls included, is what graphql-core produces: an error is located at
the same path and handled at the same place (a nullable field or list item, else the parent);
once a position is nulled the work below it stops, as graphql-core's cancellation does. A
selection the plans do not cover (abstract types resolved asynchronously, async iterables,
middleware, an abort signal) is completed by graphql-core itself. The differential tests
(tests/test_execution_differential.py) hold the two to the same output.

Resolver coroutines run inside the driving task rather than in a task each: code in a resolver
must not rely on `asyncio.current_task()` being its own (asyncio.timeout, TaskGroup); none of
this project's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
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
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from .bulk import SKIP
from .leaves import MISS
from .plans import PLAIN, TYPENAME, FieldPlan, ObjectPlan, shared_plan

__all__ = ["FastExecutor"]


def _nodes(details: FieldDetailsList) -> list[Any]:
    return [d.node for d in details]


class _Pos:
    """Where a completed object or list sits: for handling an error that reaches it later.

    `container[key] is value` while the value is still part of the response; a position whose
    chain breaks that was nulled, and the work below it is abandoned.
    """

    __slots__ = ("container", "details", "key", "parent", "path", "return_type", "value")

    def __init__(self, container: Any, key: Any, value: Any, return_type: GraphQLOutputType,
                 details: FieldDetailsList, path: Path, parent: _Pos | None) -> None:
        self.container = container
        self.key = key
        self.value = value
        self.return_type = return_type
        self.details = details
        self.path = path
        self.parent = parent


class _Job:
    """An awaitable field value (or list item) still to be completed into `container[key]`."""

    __slots__ = ("awaitable", "container", "details", "info", "key", "non_null", "path", "pos",
                 "return_type", "settled")

    def __init__(self, awaitable: Any, container: Any, key: Any, return_type: GraphQLOutputType,
                 details: FieldDetailsList, info: Any, path: Path, pos: _Pos | None,
                 settled: bool = False) -> None:
        self.awaitable = awaitable  # a coroutine to drive, or a future to wait on
        self.container = container
        self.key = key
        self.return_type = return_type
        self.details = details
        self.info = info
        self.path = path
        self.pos = pos  # the position of the object (or list) holding container
        self.settled = settled  # the awaited value is already complete (graphql-core's work)
        # For a settled value at a non-null position: the error graphql-core raises for null.
        self.non_null: str | None = None


class _LazyInfo:
    """A GraphQLResolveInfo built on first use.

    Completing a bulk field's value needs an info only to pass to `is_type_of` (which the
    schema's types ignore) and for error messages; building one per object would cost more
    than the object. Attribute access gives the real info's attributes.
    """

    __slots__ = ("args", "built")

    def __init__(self, ex: FastExecutor, field: FieldPlan, plan: ObjectPlan, path: Path) -> None:
        self.args = (ex, field, plan, path)
        self.built: Any = None

    def real(self) -> GraphQLResolveInfo[Any]:
        if self.built is None:
            ex, field, plan, path = self.args
            self.built = ex.build_resolve_info(field.field_def, field.nodes, plan.object_type, path)
        return self.built  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def _real(info: Any) -> Any:
    return info.real() if type(info) is _LazyInfo else info


class _BulkGroup:
    """One bulk field of many objects: their loads, waited for together (see bulk.py)."""

    __slots__ = ("cursor", "entries", "field", "plan")

    def __init__(self, field: FieldPlan, plan: ObjectPlan) -> None:
        self.field = field
        self.plan = plan
        # (future, object dict, parent, field path, object position)
        self.entries: list[tuple[Any, dict[str, Any], Any, Path, _Pos | None]] = []
        self.cursor = 0  # entries before it are known done


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor with breadth-first, plan-driven value completion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, ObjectPlan]] = {}
        self._strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        middleware = self.middleware_manager
        self._enabled = ((middleware is None or not middleware.middlewares)
                         and self.abort_signal is None and self._strawberry_schema is not None)
        config = getattr(self._strawberry_schema, "config", None)
        self._info_class: Any = getattr(config, "info_class", None)

    # -- operation --------------------------------------------------------------------------

    def execute_operation(self, serially: bool | None = None) -> Any:
        db: Any = getattr(self.context_value, "db", None)
        hold = getattr(db, "hold", None)
        if not self._enabled or hold is None:
            return super().execute_operation(serially)
        # The request's statements share the connections it checks out; released at its end.
        hold()
        try:
            result = super().execute_operation(serially)
        except BaseException:
            self._release_later(db)
            raise
        if not self.is_awaitable(result):
            self._release_later(db)
            return result

        async def finish() -> Any:
            try:
                return await result
            finally:
                await db.release()

        return finish()

    @staticmethod
    def _release_later(db: Any) -> None:
        # Nothing awaited means nothing was checked out; release anyway should a statement
        # have run (it cannot finish synchronously today).
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(db.release())
        _background.add(task)
        task.add_done_callback(_background.discard)

    # -- entry: below each root field --------------------------------------------------------

    def complete_value(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList,
                       info: GraphQLResolveInfo[Any], path: Path, result: Any,
                       position_context: Any) -> Any:
        if not self._enabled:
            return super().complete_value(return_type, field_details_list, info, path, result,
                                          position_context)
        return _Completion(self, position_context).run(return_type, field_details_list, info, path,
                                                       result)

    def stock_complete_value(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList,
                             info: GraphQLResolveInfo[Any], path: Path, result: Any,
                             position_context: Any) -> Any:
        """graphql-core's own completion, for what the plans do not cover."""
        return super().complete_value(return_type, field_details_list, info, path, result,
                                      position_context)

    # -- plans -----------------------------------------------------------------------------------

    def plan(self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> ObjectPlan:
        key = (object_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        grouped = self.collect_subfields(object_type, field_details_list)[0]
        plan = shared_plan(self, object_type, grouped, self._strawberry_schema)
        # Keep the list alive with its plan, so that its id cannot be reused (as collect_subfields).
        self._plans[key] = (field_details_list, plan)
        return plan

    def strawberry_info(self, raw: GraphQLResolveInfo[Any], field: Any) -> Any:
        return self._info_class(_raw_info=raw, _field=field)


_background: set[asyncio.Task[Any]] = set()


class _Completion:
    """Completes one root field's value: synchronously where it can, else by driving jobs."""

    def __init__(self, executor: FastExecutor, position_context: Any) -> None:
        self.ex = executor
        self.position_context = position_context
        self.propagate = executor.error_propagation
        self.errors = executor.collected_errors
        self.is_awaitable = executor.is_awaitable
        self.ready: list[Any] = []  # _Job and _BulkGroup to start
        self.open_groups: dict[int, _BulkGroup] = {}  # bulk groups still taking entries
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

    # -- driving coroutines -------------------------------------------------------------------

    def start(self, job: Any, parked: dict[int, Any], on_done: Callable[[Any], None]) -> None:
        if type(job) is _BulkGroup:
            self.group_wait(job, parked, on_done)
            return
        awaitable = job.awaitable
        if asyncio.iscoroutine(awaitable):
            self.step(job, awaitable, parked, on_done)
            return
        future = awaitable if asyncio.isfuture(awaitable) else asyncio.ensure_future(awaitable)
        self.park(job, None, future, parked, on_done)

    def park(self, job: _Job, coro: Any, future: Any, parked: dict[int, Any],
             on_done: Callable[[Any], None]) -> None:
        entry = parked.get(id(future))
        if entry is None:
            parked[id(future)] = (future, [(job, coro)])
            future.add_done_callback(on_done)
        else:
            entry[1].append((job, coro))

    def resume(self, job: Any, coro: Any, future: Any, parked: dict[int, Any],
               on_done: Callable[[Any], None]) -> None:
        if type(job) is _BulkGroup:
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

    # -- bulk fields ---------------------------------------------------------------------------

    def bulk_field(self, d: dict[str, Any], field: FieldPlan, plan: ObjectPlan, source: Any,
                   obj_path: Path, pos: _Pos | None) -> None:
        """Start loading a bulk field's value: what its resolver would do first, in bulk."""
        bulk = field.bulk
        assert bulk is not None
        field_path = Path(obj_path, field.name, plan.object_type.name)
        try:
            key = bulk.key(source)
            if key is SKIP:  # the resolver returns None
                self.complete(d, field.name, field.return_type, field.details,
                              self.info(field, plan, field_path), field_path, None, pos)
                return
            future = getattr(self.loaders, bulk.loader).load(key)
        except Exception as raw_error:
            self.field_error(raw_error, d, field, field_path)
            return
        d[field.name] = None
        group = self.open_groups.get(id(field))
        if group is None:
            group = self.open_groups[id(field)] = _BulkGroup(field, plan)
            self.ready.append(group)
        group.entries.append((future, d, source, field_path, pos))

    def group_wait(self, group: _BulkGroup, parked: dict[int, Any], on_done: Callable[[Any], None]) -> None:
        entries = group.entries
        for index in range(group.cursor, len(entries)):
            future = entries[index][0]
            if not future.done():
                group.cursor = index
                self.park(group, None, future, parked, on_done)  # type: ignore[arg-type]
                return
        self.group_done(group)

    def group_done(self, group: _BulkGroup) -> None:
        field, plan = group.field, group.plan
        then = field.bulk.then  # type: ignore[union-attr]
        name, return_type, leaf, nullable = field.name, field.return_type, field.leaf, field.nullable
        list_item, list_object = field.list_item_type, field.list_object_type
        for future, d, source, field_path, pos in group.entries:
            if self.nulled and not self.alive(pos):
                continue  # graphql-core cancels the resolvers under a nulled position
            try:
                value = future.result()
                if then is not None:
                    value = then(source, value)
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
            value = field.getter(source)  # type: ignore[misc]
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
            if field.bulk is not None:
                self.bulk_field(d, field, plan, source, path, pos)
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
                value = field.getter(source)  # type: ignore[misc]
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
            if field.bulk is not None:
                self.bulk_field(d, field, plan, source, path, pos)
                continue
            field_path = Path(path, field.name, type_name)
            self.execute_field(d, field, plan, source, field_path, pos)

    def execute_field(self, d: dict[str, Any], field: FieldPlan, plan: ObjectPlan, source: Any,
                      field_path: Path, pos: _Pos | None) -> None:
        ex = self.ex
        info = ex.build_resolve_info(field.field_def, field.nodes, plan.object_type, field_path)
        try:
            if field.kind == PLAIN:
                result = field.getter(source)  # type: ignore[misc]
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
                result = field.resolve(source, info, **args)  # type: ignore[misc]
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


async def _await_item(item: Awaitable[Any]) -> Any:
    return await item


class _Deferred:
    __slots__ = ()


_DEFERRED = _Deferred()
"""Placeholder for a value graphql-core is still completing (see `settle_stock`)."""


def _set_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
