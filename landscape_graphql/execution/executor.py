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
  level of the response is resolved together, which is also how DataLoader batches them (a
  batch waits until the drivers have resumed what finished, see `_gate.py`);
* a relation field (its declaration in the field's metadata, see `relations.py`) is started for
  every object of a list and waited for once, running the same steps as its resolver.

The completion itself is `_completion.py`; the positions and jobs it tracks are `_jobs.py`.
The request's database connections are not this module's business: the request handler holds
them around execution (`Context.held_connections`).

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

from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from ._completion import _Completion
from ._gate import BatchGate
from .plans import ObjectPlan, shared_plan

__all__ = ["FastExecutor"]


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
        self.batch_gate = BatchGate()  # shared by the drivers of all root fields

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
