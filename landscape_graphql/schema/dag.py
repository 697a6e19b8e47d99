"""A run's pipeline as a graph: nodes, edges with the tokens that crossed them, and Mermaid text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from ..db import records as R

if TYPE_CHECKING:
    from .runs import PipelineEdge, PipelineNode

PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]
PipelineEdgeT = Annotated["PipelineEdge", strawberry.lazy("landscape_graphql.schema.runs")]


@dataclass(frozen=True, slots=True)
class DagData:
    nodes: list[R.NodeRecord]
    edges: list[R.EdgeRecord]
    counts: dict[str, int]


@strawberry.type
class DagEdge:
    @strawberry.field(graphql_type="PipelineEdgeT")
    @staticmethod
    def edge(parent: Parent[tuple[R.EdgeRecord, int]]) -> R.EdgeRecord:
        return parent[0]

    @strawberry.field(description=(
        "Tokens seen crossing the edge: a gate route's routing events, or (other edges) tokens "
        "whose consecutive node states sit at its two ends"))
    @staticmethod
    def token_count(parent: Parent[tuple[R.EdgeRecord, int]]) -> int:
        return parent[1]


def _label(text: str) -> str:
    return re.sub(r'["<>\[\]{}|]', "_", text)


def mermaid(data: DagData) -> str:
    ids = {node.node_id: f"n{i}" for i, node in enumerate(data.nodes)}
    lines = ["flowchart LR"]
    for node in data.nodes:
        lines.append(f'  {ids[node.node_id]}["{_label(node.plugin_name)}<br/>{node.node_type.value}"]')
    for edge in data.edges:
        if edge.from_node_id in ids and edge.to_node_id in ids:
            label = _label(f"{edge.label} · {data.counts.get(edge.edge_id, 0)}")
            lines.append(f'  {ids[edge.from_node_id]} -->|"{label}"| {ids[edge.to_node_id]}')
    return "\n".join(lines) + "\n"


@strawberry.type(description="The pipeline DAG of a run, with per-edge token counts.")
class RunDag:
    @strawberry.field(graphql_type="list[PipelineNodeT]")
    @staticmethod
    def nodes(parent: Parent[DagData]) -> list[R.NodeRecord]:
        return parent.nodes

    @strawberry.field
    @staticmethod
    def edges(parent: Parent[DagData]) -> list[DagEdge]:
        return [(e, parent.counts.get(e.edge_id, 0)) for e in parent.edges]

    @strawberry.field(description="The same graph as Mermaid flowchart text.")
    @staticmethod
    def mermaid(parent: Parent[DagData]) -> str:
        return mermaid(parent)
