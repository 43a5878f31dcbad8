"""Genotype derivation (top-2 incoming edges by strongest non-`none` op, then that op)."""

from __future__ import annotations

import pytest
import torch

from networks.nas import NetworkCIFAR
from networks.nas.derivation import derive_cell, derive_genotype
from networks.nas.genotypes import PUBLISHED_GENOTYPES, Genotype, validate_genotype
from networks.nas.operations import PRIMITIVES
from networks.nas.search_space import SearchNetwork, edge_inputs
from tests.nas_search.helpers import few_weights_candidates

ALL = (PRIMITIVES,) * 14
LAYOUT = edge_inputs(4)


def edge(node: int, state: int) -> int:
    return LAYOUT.index((node, state))


def alphas_from(edges) -> torch.Tensor:
    """Alphas that favour exactly ``edges`` (the first edge of each node a little more than the second)."""
    alpha = torch.zeros(14, len(PRIMITIVES))
    for position, (op, state) in enumerate(edges):
        alpha[edge(position // 2, state), PRIMITIVES.index(op)] = 3.0 if position % 2 == 0 else 2.5
    return alpha


def test_hand_made_alphas() -> None:
    alpha = torch.zeros(14, 8)
    op = PRIMITIVES.index
    alpha[edge(0, 0), op("sep_conv_3x3")] = 3.0
    alpha[edge(0, 1), op("none")] = 5.0          # `none` dominates, but a node keeps two edges: the best other op
    alpha[edge(0, 1), op("skip_connect")] = 2.0
    alpha[edge(1, 0), op("none")] = 10.0         # strongest non-none op is tiny: this edge is dropped
    alpha[edge(1, 0), op("max_pool_3x3")] = 1.0
    alpha[edge(1, 1), op("dil_conv_5x5")] = 4.0
    alpha[edge(1, 2), op("sep_conv_5x5")] = 2.5
    alpha[edge(2, 1), op("avg_pool_3x3")] = 3.0
    alpha[edge(2, 3), op("skip_connect")] = 3.5
    alpha[edge(3, 4), op("sep_conv_3x3")] = 2.0
    alpha[edge(3, 0), op("dil_conv_3x3")] = 1.5
    weights = torch.softmax(alpha, dim=-1)
    assert derive_cell(weights, ALL) == [
        ("sep_conv_3x3", 0), ("skip_connect", 1),
        ("dil_conv_5x5", 1), ("sep_conv_5x5", 2),
        ("skip_connect", 3), ("avg_pool_3x3", 1),   # strongest first
        ("sep_conv_3x3", 4), ("dil_conv_3x3", 0),
    ]


def test_ties_go_to_the_lower_index() -> None:
    assert derive_cell(torch.full((14, 8), 1 / 8), ALL) == [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4


@pytest.mark.parametrize("name", ["DARTS_V2", "PC_DARTS_cifar", "PDARTS"])
def test_published_genotypes_round_trip(name: str) -> None:
    genotype = PUBLISHED_GENOTYPES[name]
    derived = derive_genotype(torch.softmax(alphas_from(genotype.normal), -1),
                              torch.softmax(alphas_from(genotype.reduce), -1), ALL, ALL)
    # Same cells; within a node the edges come strongest first, which alphas_from fixed to the listed order.
    assert derived == genotype


def test_per_edge_candidates_name_the_right_operation() -> None:
    candidates = few_weights_candidates()["normal"]
    weights = torch.zeros(14, 3)
    weights[:, 2] = 1.0                           # third candidate everywhere
    weights[edge(0, 0), 2] = 2.0
    cell = derive_cell(weights, candidates)
    assert cell[0] == ("dil_conv_3x3", 0)         # edges 0-4 have dil_conv_3x3 third
    assert cell[4] == ("avg_pool_3x3", 0)         # later edges have avg_pool_3x3 third


def test_edge_weights_scale_the_strength() -> None:
    weights = torch.full((14, 8), 1 / 8)
    edge_weights = torch.ones(14)
    edge_weights[edge(0, 0)] = 0.1
    edge_weights[edge(1, 0)] = 0.1
    cell = derive_cell(weights, ALL, edge_weights=edge_weights)
    assert [state for _, state in cell[:4]] == [1, 0, 1, 2]


def test_node_without_two_usable_edges_is_an_error() -> None:
    with pytest.raises(ValueError, match="fewer than two incoming edges"):
        derive_cell(torch.ones(14, 1), [("none",)] * 14)


@pytest.mark.parametrize("seed", range(4))
def test_derived_genotypes_validate_and_build_an_evaluation_network(seed: int) -> None:
    torch.manual_seed(seed)
    network = SearchNetwork(4, 10, 3)
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.normal_(0.0, 2.0)
    genotype = network.genotype()
    assert isinstance(genotype, Genotype)
    validate_genotype(genotype)
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)
    evaluation = NetworkCIFAR(4, 10, 3, False, genotype)
    logits, _ = evaluation(torch.randn(2, 3, 8, 8))
    assert logits.shape == (2, 10)
