"""The zoo's prunable backbones: published sizes, explicit channel lists, gate placement (arXiv:1909.12579)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.classification import build_backbone
from networks.classification.channel_surgery import mobilenet_v2_channel_groups, resnet50_channel_groups
from networks.classification.cifar_resnet import default_channels as resnet_channels
from networks.classification.vgg import default_channels as vgg_channels
from visionsuite.complexity import count_parameters


class CountingGate(nn.Module):
    """A gate with one parameter per channel (what gate learning trains)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gates.view(1, -1, 1, 1)


@pytest.mark.parametrize(("name", "millions"), [("resnet56", 0.856), ("resnet110", 1.731), ("vgg16_bn", 14.72)])
def test_published_sizes_at_ten_classes(name: str, millions: float) -> None:
    decimals = len(str(millions).split(".")[1])
    assert round(count_parameters(build_backbone(name, 10)) / 1e6, decimals) == millions


def test_imagenet_sizes() -> None:
    assert count_parameters(build_backbone("mobilenet_v1", 1000)) / 1e6 == pytest.approx(4.23, abs=0.01)
    torchvision_sizes = {"resnet50": 25_557_032, "mobilenet_v2": 3_504_872}  # torchvision.models at 1000 classes
    for name, size in torchvision_sizes.items():
        assert count_parameters(build_backbone(name, 1000)) == size
        assert count_parameters(build_backbone(name, 1000, width_multiplier=1.0, channels=None)) == size


def test_default_channels_follow_the_official_expansion() -> None:
    assert resnet_channels(20) == [16] * 3 + [32] * 3 + [64] * 3
    assert resnet_channels(20, 5.0)[:3] == [80] * 3  # expansion -e 80
    assert vgg_channels(1.25)[0] == 80 and len(vgg_channels()) == 13


@pytest.mark.parametrize("name", ["resnet20", "vgg16_bn"])
def test_explicit_channels_and_gates(name: str) -> None:
    plain = build_backbone(name, 10)
    groups = plain.channel_groups()
    widths = [3 + index % 5 for index in range(len(groups))]
    narrow = build_backbone(name, 10, channels=widths, gate_layer=CountingGate)
    for group, width in zip(narrow.channel_groups(), widths, strict=True):
        assert narrow.get_submodule(group.gate).gates.numel() == width
        for consumer in group.consumers:
            assert narrow.get_submodule(consumer).weight.shape[1] == width
    assert narrow(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert all(isinstance(plain.get_submodule(group.gate), nn.Identity) for group in groups)


def test_torchvision_families_take_channels_and_gates() -> None:
    resnet = build_backbone("resnet50", 10, width_multiplier=0.25, gate_layer=CountingGate)
    groups = resnet50_channel_groups(resnet)
    assert len(groups) == 32 and resnet.get_submodule(groups[0].gate).gates.numel() == 16
    assert resnet(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    widths = [8] * 18
    mobile = build_backbone("mobilenet_v2", 10, channels=widths, gate_layer=CountingGate)
    for group in mobilenet_v2_channel_groups(mobile):
        assert mobile.get_submodule(group.gate).gates.numel() == 8
    assert mobile(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_bad_channel_lists() -> None:
    with pytest.raises(ValueError, match="^channels has 8 entries, .*expected 9"):
        build_backbone("resnet20", 10, channels=[16] * 8)
    with pytest.raises(ValueError, match=r"^channels\[2\]=0"):
        build_backbone("vgg16_bn", 10, channels=[64, 64, 0] + [64] * 10)
    with pytest.raises(ValueError, match=r"^width_mult=0\.5: the prunable widths"):
        build_backbone("mobilenet_v2", 10, width_mult=0.5, width_multiplier=1.25)
