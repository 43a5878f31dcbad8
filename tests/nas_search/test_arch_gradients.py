"""The architecture-gradient strategies against exact references (invariants, float64, no golden numbers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from networks.nas.arch_gradients import (
    ARCH_GRADIENTS,
    AmendedGradient,
    FirstOrderGradient,
    SecondOrderGradient,
    build_arch_gradient,
)
from networks.nas.search_space import EdgeSource, MixedOp
from tests.nas_search.helpers import tiny_batches, tiny_network

# Exactness checks use a small finite-difference step: on a network this small, a step of norm 0.01 (the
# papers' value, the default) can cross a ReLU / max-pool kink whose gradient jump dominates the difference.
EXACT = {"finite_difference_scale": 1e-5}


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def sgd_with_history(network: nn.Module, batch, lr: float = 0.05) -> torch.optim.SGD:
    """An SGD optimizer of the weights (momentum 0.9, wd 3e-4) that has taken one step (momentum buffers set)."""
    optimizer = torch.optim.SGD(network.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    loss = F.cross_entropy(network(batch[0], detach_arch=True), batch[1])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer


def test_first_order_is_the_plain_validation_gradient() -> None:
    network = tiny_network()
    train, val = tiny_batches()
    result = FirstOrderGradient()(network, train, val)
    expected = torch.autograd.grad(F.cross_entropy(network(val[0]), val[1]), network.arch_parameters())
    for got, want in zip(result.gradients, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert all(p.grad is None for p in network.parameters()), "the strategy must not accumulate .grad"


def test_virtual_step_is_one_step_of_the_weight_optimizer() -> None:
    network = tiny_network()
    train, _ = tiny_batches()
    optimizer = sgd_with_history(network, train)
    weights = network.weight_parameters()
    gradients = torch.autograd.grad(F.cross_entropy(network(train[0], detach_arch=True), train[1]), weights)
    xi, virtual = SecondOrderGradient.virtual_step(weights, gradients, optimizer)
    for weight, gradient in zip(weights, gradients, strict=True):
        weight.grad = gradient.clone()
    optimizer.step()
    assert xi == 0.05
    for stepped, predicted in zip(weights, virtual, strict=True):
        torch.testing.assert_close(predicted, stepped.detach(), rtol=0, atol=1e-12)


def test_second_order_matches_exact_double_backward_through_the_unrolled_step() -> None:
    """d/dalpha L_val(w - xi * (mu * buf + grad_w L_train(w, alpha) + wd * w), alpha), by autograd."""
    network = tiny_network()
    train, val = tiny_batches()
    optimizer = sgd_with_history(network, train)
    got = SecondOrderGradient(**EXACT)(network, train, val, optimizer).gradients

    names, weights = zip(*network.named_weight_parameters(), strict=True)
    train_gradient = torch.autograd.grad(F.cross_entropy(network(train[0]), train[1]), weights, create_graph=True)
    group = optimizer.param_groups[0]
    xi, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
    unrolled = [w - xi * (mu * optimizer.state[w]["momentum_buffer"] + g + wd * w)
                for w, g in zip(weights, train_gradient, strict=True)]
    val_loss = F.cross_entropy(functional_call(network, dict(zip(names, unrolled, strict=True)), (val[0],)), val[1])
    exact = torch.autograd.grad(val_loss, network.arch_parameters())
    first_order_part = FirstOrderGradient()(network, train, val).gradients  # at w, for the scale of the test
    correction = flat(exact) - flat(first_order_part)
    assert float(correction.norm()) > 0.1 * float(flat(exact).norm()), "the second-order term must matter here"
    torch.testing.assert_close(flat(got), flat(exact), rtol=1e-6, atol=1e-7 * float(flat(exact).abs().max()))


def test_amended_matches_exact_hessian_vector_products_on_a_search_network() -> None:
    network = tiny_network()
    train, val = tiny_batches()
    eta = 0.5
    got = AmendedGradient(eta=eta, **EXACT)(network, train, val).gradients

    weights, arch = network.weight_parameters(), network.arch_parameters()
    val_gradients = torch.autograd.grad(F.cross_entropy(network(val[0]), val[1]), [*arch, *weights])
    alpha_gradient, v = val_gradients[: len(arch)], val_gradients[len(arch):]
    train_loss = F.cross_entropy(network(train[0]), train[1])
    train_grad_w = torch.autograd.grad(train_loss, weights, create_graph=True)
    u = torch.autograd.grad(sum((g * d).sum() for g, d in zip(train_grad_w, v, strict=True)), weights, retain_graph=True)
    mixed = torch.autograd.grad(sum((g * d).sum() for g, d in zip(train_grad_w, u, strict=True)), arch)  # H_alpha_w u
    exact = flat(alpha_gradient) - eta * flat(mixed)
    assert float((exact - flat(alpha_gradient)).norm()) > 0.01 * float(exact.norm())
    torch.testing.assert_close(flat(got), exact, rtol=1e-6, atol=1e-7 * float(exact.abs().max()))


class HessianSizedSearchModel(nn.Module):
    """A search model small enough for explicit Hessians: stem conv, two mixed-op edges, linear head.

    It has the interface the strategies use (``arch_parameters``, ``named_weight_parameters``,
    ``forward(x, detach_arch=...)``) and real search-space mixed ops.
    """

    CANDIDATES = ("none", "skip_connect", "avg_pool_3x3", "dil_conv_3x3")

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.source_1, self.edge_1 = EdgeSource(2, 1, self.CANDIDATES), MixedOp(2, 1, self.CANDIDATES)
        self.source_2, self.edge_2 = EdgeSource(2, 2, self.CANDIDATES), MixedOp(2, 2, self.CANDIDATES)
        self.head = nn.Linear(2, 3)
        self.alpha = nn.Parameter(0.3 * torch.randn(2, len(self.CANDIDATES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def named_weight_parameters(self):
        return ((name, p) for name, p in self.named_parameters() if name != "alpha")

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_weight_parameters()]

    def forward(self, x: torch.Tensor, detach_arch: bool = False) -> torch.Tensor:
        alpha = self.alpha.detach() if detach_arch else self.alpha
        weights = F.softmax(alpha, dim=-1)
        h = self.stem(x)
        h = self.edge_1(self.source_1(h), weights[0]) + h
        h = self.edge_2(self.source_2(h), weights[1])
        return self.head(h.mean(dim=(2, 3)))


def explicit_hessians(model: HessianSizedSearchModel, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``H = d2L/dw dw`` (n_w x n_w) and ``H_alpha_w = d2L/dalpha dw`` (n_alpha x n_w), row by row."""
    weights, arch = model.weight_parameters(), model.arch_parameters()
    loss = F.cross_entropy(model(batch[0]), batch[1])
    gradient = flat(torch.autograd.grad(loss, [*weights, *arch], create_graph=True))
    n_w = sum(w.numel() for w in weights)
    rows = [flat(torch.autograd.grad(gradient[i], weights, retain_graph=True)) for i in range(gradient.numel())]
    matrix = torch.stack(rows)
    return matrix[:n_w], matrix[n_w:]


def test_amended_term_matches_explicit_hessian_matrices() -> None:
    torch.manual_seed(0)
    model = HessianSizedSearchModel().double()
    train, val = tiny_batches(classes=3)
    eta = 0.1
    got = flat(AmendedGradient(eta=eta, **EXACT)(model, train, val).gradients)

    hessian, mixed = explicit_hessians(model, train)
    assert hessian.shape[0] < 100
    torch.testing.assert_close(hessian, hessian.T, rtol=0, atol=1e-10)
    weights, arch = model.weight_parameters(), model.arch_parameters()
    val_gradient = torch.autograd.grad(F.cross_entropy(model(val[0]), val[1]), [*arch, *weights])
    alpha_gradient, v = flat(val_gradient[: len(arch)]), flat(val_gradient[len(arch):])
    amending = eta * mixed @ (hessian @ v)
    assert float(amending.norm()) > 1e-8
    torch.testing.assert_close(alpha_gradient - got, amending, rtol=1e-5, atol=1e-6 * float(amending.abs().max()))


def test_amended_with_eta_zero_is_first_order() -> None:
    network = tiny_network()
    train, val = tiny_batches()
    amended = AmendedGradient(eta=0.0)(network, train, val).gradients
    first = FirstOrderGradient()(network, train, val).gradients
    torch.testing.assert_close(flat(amended), flat(first))


def test_gradients_are_averaged_through_the_reduce_hook() -> None:
    """The final gradient and loss (and, for second order / amended, the global intermediates) go through
    ``reduce``."""
    network = tiny_network()
    train, val = tiny_batches()
    optimizer = sgd_with_history(network, train)
    calls = []

    def spy(tensors):
        calls.append(len(tensors))
        return list(tensors)

    for name, expected_calls in (("first_order", 1), ("second_order", 3), ("amended", 3)):
        calls.clear()
        build_arch_gradient(name, reduce=spy)(network, train, val, optimizer)
        assert len(calls) == expected_calls, name
        assert calls[-1] == len(network.arch_parameters()) + 1  # the gradients and the loss


def test_unknown_arch_gradient_lists_the_modes() -> None:
    with pytest.raises(ValueError) as error:
        build_arch_gradient("third_order")
    for name in ARCH_GRADIENTS:
        assert name in str(error.value)
    assert str(error.value).startswith("name='third_order'")


@pytest.mark.parametrize("eta", [-0.1, float("nan"), "big"])
def test_amended_rejects_a_bad_eta(eta) -> None:
    with pytest.raises(ValueError, match="^eta="):
        build_arch_gradient("amended", eta=eta)
