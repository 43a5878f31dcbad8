"""The shared search space: mixed op, search cell, search network, candidate operations per edge."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.nas.operations import PRIMITIVES, Zero
from networks.nas.search_space import (
    MixedOp,
    SearchNetwork,
    edge_inputs,
    normalize_candidate_ops,
    num_cell_edges,
)
from tests.nas_search.helpers import few_weights_candidates
from visionsuite.errors import ConfigError


def test_darts_search_network_size_and_parameter_split() -> None:
    torch.manual_seed(0)
    network = SearchNetwork(16, 10, 8)
    weights = sum(p.numel() for p in network.weight_parameters())
    assert weights == pytest.approx(1.93e6, rel=0.005)  # methods-nas.md: ~1.93M
    assert [tuple(p.shape) for p in network.arch_parameters()] == [(14, 8), (14, 8)]
    arch_ids = {id(p) for p in network.arch_parameters()}
    weight_ids = {id(p) for p in network.weight_parameters()}
    assert not arch_ids & weight_ids
    assert arch_ids | weight_ids == {id(p) for p in network.parameters()}
    state = network.state_dict()
    assert "alpha_normal" in state and "alpha_reduce" in state
    assert float(network.alpha_normal.detach().abs().max()) < 0.01  # 1e-3 * randn
    assert network.reduction_positions == (2, 5)


def test_search_mode_batch_norm_is_not_affine_and_pools_are_followed_by_batch_norm() -> None:
    network = SearchNetwork(4, 10, 3)
    for cell in network.cells:
        for module in cell.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert not module.affine
        for edge in cell.edges:
            for name, op in zip(edge.candidates, edge.ops, strict=True):
                if "pool" in name:
                    assert isinstance(op, nn.Sequential) and isinstance(op[1], nn.BatchNorm2d)


def test_forward_shapes_and_detached_architecture() -> None:
    torch.manual_seed(0)
    network = SearchNetwork(4, 7, 4, in_channels=1)
    images = torch.randn(3, 1, 12, 12)
    logits = network(images)
    assert logits.shape == (3, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in network.arch_parameters())
    network.zero_grad(set_to_none=True)
    network(images, detach_arch=True).sum().backward()
    assert all(p.grad is None for p in network.arch_parameters())


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("training", [False, True])
def test_mixed_op_is_the_softmax_weighted_sum_of_its_candidates(stride: int, training: bool) -> None:
    # The mixed op shares one relu(x) among the candidates that start with a ReLU; the result and the
    # gradients must be those of running every candidate on its own.
    torch.manual_seed(0)
    op = MixedOp(4, stride, PRIMITIVES).train(training).double()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(len(PRIMITIVES), dtype=torch.float64, requires_grad=True)
    weights = torch.softmax(alpha, dim=0)
    expected = sum(w * candidate(x) for w, candidate in zip(weights, op.ops, strict=True))  # `none` included
    actual = op(x, weights)
    torch.testing.assert_close(actual, expected)
    upstream = torch.randn_like(actual)
    inputs = (x, alpha, *op.parameters())
    for got, want in zip(torch.autograd.grad(actual, inputs, upstream, retain_graph=True),
                         torch.autograd.grad(expected, inputs, upstream),
                         strict=True):
        torch.testing.assert_close(got, want)
    assert isinstance(op.ops[0], Zero)


def test_edge_layout() -> None:
    assert num_cell_edges(4) == 14
    layout = edge_inputs(4)
    assert layout[:2] == [(0, 0), (0, 1)] and layout[-5:] == [(3, state) for state in range(5)]


def test_candidate_ops_per_edge() -> None:
    candidates = few_weights_candidates()
    network = SearchNetwork(2, 3, 3, in_channels=1, candidate_ops=candidates)
    assert tuple(network.alpha_normal.shape) == (14, 3)
    assert network.cells[0].edges[0].candidates == ("none", "skip_connect", "dil_conv_3x3")
    assert network.cells[0].edges[9].candidates == ("none", "skip_connect", "avg_pool_3x3")
    assert network(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    one_list = normalize_candidate_ops(["skip_connect", "sep_conv_3x3"])
    assert one_list["normal"] == one_list["reduce"] == (("skip_connect", "sep_conv_3x3"),) * 14


@pytest.mark.parametrize("spec, message", [
    (["sep_conv_3x3", "conv_7x7"], "'conv_7x7' is not in the search space"),
    (["skip_connect", "skip_connect"], "twice"),
    ([], "empty"),
    ({"normal": [["skip_connect"]] * 14}, "normal, reduce"),
    ({"normal": [["skip_connect"]] * 13, "reduce": [["skip_connect"]] * 14}, "one list of operations per edge"),
    ({"normal": [["skip_connect"]] * 13 + [["skip_connect", "none"]], "reduce": [["skip_connect"]] * 14},
     "same number of candidates"),
])
def test_bad_candidate_ops_are_clear_errors(spec, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchNetwork(4, 10, 3, candidate_ops=spec)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_network_too_shallow_for_two_reduction_cells(layers: int) -> None:
    with pytest.raises(ConfigError, match="at least 3 cells to hold its two reduction cells"):
        SearchNetwork(4, 10, layers)


def test_odd_channels_are_refused() -> None:
    with pytest.raises(ConfigError, match="even"):
        SearchNetwork(5, 10, 3)
