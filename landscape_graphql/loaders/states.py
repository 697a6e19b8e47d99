"""Loaders of what happened at nodes: node states, external calls, routing events."""

from __future__ import annotations

from ..db import queries as q
from ..db import records as R
from ._base import ManyByKey, OneByKey, fetcher


class NodeStateByIdLoader(OneByKey[str, R.NodeStateRecord]):
    fetch = fetcher(q.node_states_by_id)
    key_of = staticmethod(lambda s: s.state_id)


class NodeStatesByTokenIdLoader(ManyByKey[str, R.NodeStateRecord]):
    fetch = fetcher(q.node_states_of_tokens)
    key_of = staticmethod(lambda s: s.token_id)


class CallByIdLoader(OneByKey[str, R.CallRecord]):
    fetch = fetcher(q.calls_by_id)
    key_of = staticmethod(lambda c: c.call_id)


class CallsByStateIdLoader(ManyByKey[str, R.CallRecord]):
    fetch = fetcher(q.calls_of_states)
    key_of = staticmethod(lambda c: c.state_id)


class CallsByTokenIdLoader(ManyByKey[str, R.CallRecord]):
    fetch = fetcher(q.calls_of_tokens)


class CallsByOperationIdLoader(ManyByKey[str, R.CallRecord]):
    fetch = fetcher(q.calls_of_operations)
    key_of = staticmethod(lambda c: c.operation_id)


class RoutingEventsByStateIdLoader(ManyByKey[str, R.RoutingEventRecord]):
    fetch = fetcher(q.routing_events_of_states)
    key_of = staticmethod(lambda e: e.state_id)


class RoutingEventsByTokenIdLoader(ManyByKey[str, R.RoutingEventRecord]):
    fetch = fetcher(q.routing_events_of_tokens)


class SchedulerEventsByTokenIdLoader(ManyByKey[str, R.SchedulerEventRecord]):
    fetch = fetcher(q.scheduler_events_of_tokens)
    key_of = staticmethod(lambda e: e.token_id)
