"""The shared search space: mixed op, search cell, search network, candidate operations per edge."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.nas.operations import PRIMITIVES, Zero
from networks.nas.search_space import (
    SHARED_OPS,
    EdgeSource,
    MixedOp,
    SearchCell,
    SearchNetwork,
    edge_inputs,
    normalize_candidate_ops,
    num_cell_edges,
)
from tests.nas_search.helpers import few_weights_candidates


def test_darts_search_network_size_and_parameter_split() -> None:
    torch.manual_seed(0)
    network = SearchNetwork(16, 10, 8)
    weights = sum(p.numel() for p in network.weight_parameters())
    assert weights == pytest.approx(1.93e6, rel=0.005)  # the size SearchNetwork documents for C=16, 8 cells
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
        assert len(cell.sources) == 5  # the two cell inputs and nodes 0-2 feed edges
        for source in cell.sources:
            assert sorted(source.pools) == sorted(SHARED_OPS)
            for pool in source.pools.values():
                assert isinstance(pool, nn.Sequential) and isinstance(pool[1], nn.BatchNorm2d)


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
    # The edge source computes relu(x) and the pooling candidates once for every edge leaving a state; the
    # result and the gradients must be those of running every candidate on its own.
    torch.manual_seed(0)
    op = MixedOp(4, stride, PRIMITIVES).train(training).double()
    source = EdgeSource(4, stride, PRIMITIVES).train(training).double()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(len(PRIMITIVES), dtype=torch.float64, requires_grad=True)
    weights = torch.softmax(alpha, dim=0)
    candidates = [source.pools[name] if name in SHARED_OPS else candidate
                  for name, candidate in zip(PRIMITIVES, op.ops, strict=True)]
    expected = sum(w * candidate(x) for w, candidate in zip(weights, candidates, strict=True))  # `none` included
    actual = op(source(x), weights)
    torch.testing.assert_close(actual, expected)
    upstream = torch.randn_like(actual)
    inputs = (x, alpha, *op.parameters())
    for got, want in zip(torch.autograd.grad(actual, inputs, upstream, retain_graph=True),
                         torch.autograd.grad(expected, inputs, upstream),
                         strict=True):
        torch.testing.assert_close(got, want)
    assert isinstance(op.ops[0], Zero)
    with pytest.raises(ValueError, match="has no 'max_pool_3x3'"):
        op(EdgeSource(4, stride, ["skip_connect"])(x), weights)


@pytest.mark.parametrize("reduction", [False, True])
def test_cell_computes_each_states_weight_free_candidates_once(reduction: bool) -> None:
    # Every edge leaving a state shares its pooling outputs and relu: one call per state, not per edge.
    torch.manual_seed(0)
    candidates = [name for name in PRIMITIVES if not name.startswith("sep_conv")]  # their 2nd half has a ReLU
    cell = SearchCell(4, 4, 6, 6, 4, reduction, False, [candidates] * 14).double()
    calls = {"max_pool_3x3": 0, "relu": 0}

    def count_pool(*_) -> None:
        calls["max_pool_3x3"] += 1

    for source in cell.sources:
        source.pools["max_pool_3x3"].register_forward_hook(count_pool)
    original_relu = torch.nn.functional.relu

    def counting_relu(*args, **kwargs):
        calls["relu"] += 1
        return original_relu(*args, **kwargs)

    s0, s1 = torch.randn(2, 6, 8, 8, dtype=torch.float64), torch.randn(2, 6, 8, 8, dtype=torch.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "relu", counting_relu)
        out = cell(s0, s1, torch.softmax(torch.randn(14, len(candidates), dtype=torch.float64), -1))
    assert out.shape == ((2, 16, 4, 4) if reduction else (2, 16, 8, 8))
    assert calls["max_pool_3x3"] == 5  # the two inputs and nodes 0-2 feed edges; node 3 feeds none
    assert calls["relu"] == 2 + 5  # the two preprocessing blocks, then once per state feeding edges


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
    with pytest.raises(ValueError, match=f"^candidate_ops.*{message}"):
        SearchNetwork(4, 10, 3, candidate_ops=spec)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_network_too_shallow_for_two_reduction_cells(layers: int) -> None:
    with pytest.raises(ValueError, match=f"^layers={layers}: .*at least 3 cells to hold its two reduction cells"):
        SearchNetwork(4, 10, layers)


def test_odd_channels_are_refused() -> None:
    with pytest.raises(ValueError, match="^init_channels=5: must be even"):
        SearchNetwork(5, 10, 3)
