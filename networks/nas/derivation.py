"""Deriving the discrete genotype from the architecture weights (DARTS arXiv:1806.09055, Sec. 2.4).

For every intermediate node, keep the two incoming edges whose strongest non-``none`` operation has the
largest weight, and on each of them that operation. Ties are broken by the lower index (edges by input
state, operations by candidate position), as a stable sort and a strict ``>`` do in the official code.
Edges are listed strongest first. With PC-DARTS edge normalisation (arXiv:1907.05737, Sec. 3.3) an edge's
strength is its operation weight times its normalised edge weight; pass those as ``edge_weights``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .genotypes import Genotype
from .search_space import edge_inputs

__all__ = ["derive_cell", "derive_genotype"]

NONE_OP = "none"


def derive_cell(weights: torch.Tensor, candidates: Sequence[Sequence[str]], nodes: int = 4,
                edge_weights: torch.Tensor | None = None, cell: str = "cell") -> list[tuple[str, int]]:
    """The ``(op, input)`` edges of one cell: two per node, pairs ``2i, 2i+1`` feeding node ``i + 2``.

    Args:
        weights: ``(edges, candidates)`` operation weights (softmax of alpha).
        candidates: the candidate operation names of each edge (columns of ``weights``).
        nodes: intermediate nodes.
        edge_weights: optional ``(edges,)`` edge weights multiplying the strengths (PC-DARTS).
        cell: cell name used in error messages.

    Raises:
        ValueError: shapes that disagree, or a node with fewer than two edges holding a non-``none`` op.
    """
    layout = edge_inputs(nodes)
    weights = torch.as_tensor(weights).detach().to("cpu", torch.float64)
    if weights.dim() != 2 or weights.shape[0] != len(layout) or len(candidates) != len(layout):
        raise ValueError(f"{cell}: expected weights of shape ({len(layout)}, candidates) and {len(layout)} "
                          f"candidate lists for {nodes} nodes; got {tuple(weights.shape)} and {len(candidates)}.")
    scale = None if edge_weights is None else torch.as_tensor(edge_weights).detach().to("cpu", torch.float64)
    best_ops: list[tuple[float, str]] = []
    for edge, ops in enumerate(candidates):
        if len(ops) != weights.shape[1]:
            raise ValueError(f"{cell}: edge {edge} has {len(ops)} candidates but {weights.shape[1]} weights.")
        best_value, best_name = float("-inf"), ""
        for position, name in enumerate(ops):
            value = float(weights[edge, position])
            if name != NONE_OP and value > best_value:
                best_value, best_name = value, name
        if scale is not None and best_name:
            best_value *= float(scale[edge])
        best_ops.append((best_value, best_name))

    genotype_edges: list[tuple[str, int]] = []
    for node in range(nodes):
        incoming = [edge for edge, (edge_node, _) in enumerate(layout) if edge_node == node]
        usable = [edge for edge in incoming if best_ops[edge][1]]
        if len(usable) < 2:
            raise ValueError(f"{cell}: node {node} has fewer than two incoming edges with an operation other "
                              f"than 'none', so no genotype can be derived.")
        strongest = sorted(usable, key=lambda edge: -best_ops[edge][0])[:2]
        genotype_edges += [(best_ops[edge][1], layout[edge][1]) for edge in strongest]
    return genotype_edges


def derive_genotype(weights_normal: torch.Tensor, weights_reduce: torch.Tensor,
                    candidates_normal: Sequence[Sequence[str]], candidates_reduce: Sequence[Sequence[str]],
                    nodes: int = 4, multiplier: int = 4, edge_weights_normal: torch.Tensor | None = None,
                    edge_weights_reduce: torch.Tensor | None = None) -> Genotype:
    """The genotype of a search network's weights; cells concatenate their last ``multiplier`` nodes."""
    concat = tuple(range(2 + nodes - multiplier, nodes + 2))
    return Genotype(
        normal=tuple(derive_cell(weights_normal, candidates_normal, nodes, edge_weights_normal, "normal cell")),
        normal_concat=concat,
        reduce=tuple(derive_cell(weights_reduce, candidates_reduce, nodes, edge_weights_reduce, "reduction cell")),
        reduce_concat=concat,
    )
