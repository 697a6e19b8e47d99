"""Loaders of run-level records: runs, their pipeline nodes and edges, operations."""

from __future__ import annotations

from ..db import queries as q
from ..db import records as R
from ._base import ManyByKey, OneByKey, fetcher


class RunByIdLoader(OneByKey[str, R.RunRecord]):
    fetch = fetcher(q.runs_by_id)
    key_of = staticmethod(lambda r: r.run_id)


class NodeByKeyLoader(OneByKey[tuple[str, str], R.NodeRecord]):
    """(run_id, node_id) -> node: node ids repeat across runs."""

    fetch = fetcher(q.nodes_by_key)
    key_of = staticmethod(lambda n: (n.run_id, n.node_id))


class NodesByRunIdLoader(ManyByKey[str, R.NodeRecord]):
    fetch = fetcher(q.nodes_of_runs)
    key_of = staticmethod(lambda n: n.run_id)


class EdgesByRunIdLoader(ManyByKey[str, R.EdgeRecord]):
    fetch = fetcher(q.edges_of_runs)
    key_of = staticmethod(lambda e: e.run_id)


class EdgeByIdLoader(OneByKey[str, R.EdgeRecord]):
    fetch = fetcher(q.edges_by_id)
    key_of = staticmethod(lambda e: e.edge_id)


class OperationByIdLoader(OneByKey[str, R.OperationRecord]):
    fetch = fetcher(q.operations_by_id)
    key_of = staticmethod(lambda o: o.operation_id)


class OperationsByRunIdLoader(ManyByKey[str, R.OperationRecord]):
    fetch = fetcher(q.operations_of_runs)
    key_of = staticmethod(lambda o: o.run_id)


class CheckpointsByRunIdLoader(ManyByKey[str, R.CheckpointRecord]):
    fetch = fetcher(q.checkpoints_of_runs)
    key_of = staticmethod(lambda c: c.run_id)


class PreflightResultsByRunIdLoader(ManyByKey[str, R.PreflightResultRecord]):
    fetch = fetcher(q.preflight_results_of_runs)
    key_of = staticmethod(lambda p: p.run_id)


class EdgeCountsByRunIdLoader(ManyByKey[str, tuple[str, str, int]]):
    """run -> (run id, edge id, token count) of its edges that tokens crossed."""

    fetch = fetcher(q.edge_token_counts)
    key_of = staticmethod(lambda item: item[0])
