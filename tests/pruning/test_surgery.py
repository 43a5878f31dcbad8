"""Pruning is exact (arXiv:1909.12579, Sec. 3.3): the kept-channel copy computes what the gated network computes
with its pruned gates at zero (eval mode)."""

from __future__ import annotations

import pytest
import torch

from networks.pruning.families import FAMILIES
from networks.pruning.gates import ChannelGate, channel_gates
from networks.pruning.importance import channel_scores, silence_pruned_channels
from networks.pruning.search import keep_top_channels
from networks.pruning.surgery import copy_kept_channels


def _randomise(network: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
        if isinstance(module, ChannelGate):
            module.gates.data.copy_(torch.rand(module.gates.shape, generator=generator))


@pytest.mark.parametrize(("name", "width_multiplier", "size"), [
    ("resnet20", 0.5, 32), ("vgg16_bn", 0.25, 32),
    pytest.param("resnet50", 0.125, 64, marks=pytest.mark.slow)])  # torchvision builds the full ResNet-50 first
@torch.no_grad()
def test_pruned_copy_equals_gated_network_with_pruned_gates_zero(name: str, width_multiplier: float,
                                                                 size: int) -> None:
    family = FAMILIES[name]
    gated = family.build(10, width_multiplier=width_multiplier, gate_layer=ChannelGate).eval()
    _randomise(gated, seed=0)
    groups = family.groups_of(gated)
    scores = channel_scores(gated, groups, "gates")
    kept = keep_top_channels(scores, sum(len(s) for s in scores) // 2)
    pruned = family.build(10, channels=[len(k) for k in kept], width_multiplier=width_multiplier).eval()
    copy_kept_channels(gated, pruned, groups, kept)
    silence_pruned_channels(gated, groups, kept)
    assert all(float(gate.gates[[i for i in range(len(gate.gates)) if i not in k]].abs().sum()) == 0
               for gate, k in zip(channel_gates(gated, groups), kept, strict=True))
    images = torch.randn(3, 3, size, size)
    torch.testing.assert_close(pruned(images), gated(images), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_baseline_silencing_zeroes_bn_of_pruned_channels_exactly() -> None:
    family = FAMILIES["resnet20"]
    trained = family.build(10, width_multiplier=0.5).eval()
    _randomise(trained, seed=1)
    groups = family.groups_of(trained)
    scores = channel_scores(trained, groups, "filter_l1")
    kept = keep_top_channels(scores, sum(len(s) for s in scores) // 3)
    pruned = family.build(10, channels=[len(k) for k in kept], width_multiplier=0.5).eval()
    copy_kept_channels(trained, pruned, groups, kept)
    silence_pruned_channels(trained, groups, kept)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(pruned(images), trained(images), rtol=1e-4, atol=1e-5)
