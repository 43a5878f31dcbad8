"""MobileNetV1 (Howard et al., arXiv:1704.04861) for ImageNet, as the Pruning-from-Scratch code builds it.

Stem conv3x3 stride 2 + BN + ReLU, then 13 depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise
1x1 + BN + ReLU; stride 2 at blocks 1, 3, 5, 11), global average pooling, one linear layer. ``channels`` has
14 entries: the stem width and each pointwise output (32, 64, 128, 128, 256, 256, 512 x6, 1024); a depthwise
conv has the width of its input. Gates (arXiv:1909.12579, reference ``gate.py``): after the stem's BN and
after each pointwise BN. 4.23M parameters at 1000 classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from networks.classification.prunable import (
    ChannelGroup,
    GateLayer,
    checked_channels,
    gate_or_identity,
    scaled_width,
)
from networks.classification.registry import register_backbone

V1_WIDTHS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
STRIDE_TWO_BLOCKS = (1, 3, 5, 11)


class StemConv(nn.Module):
    """conv3x3 stride 2 - BN - [gate] - ReLU."""

    def __init__(self, out_channels: int, gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.gate = gate_or_identity(gate_layer, out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.gate(self.bn(self.conv(x))))


class DepthwiseSeparable(nn.Module):
    """depthwise 3x3 - BN - ReLU - pointwise 1x1 - BN - [gate] - ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.gate2 = gate_or_identity(gate_layer, out_channels)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.gate2(self.bn2(self.conv2(x))))


class MobileNetV1(nn.Module):
    """MobileNetV1 (see the module docstring)."""

    def __init__(self, num_classes: int, channels: list[int], gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        self.stem = StemConv(channels[0], gate_layer)
        blocks = []
        for index, (in_channels, out_channels) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            stride = 2 if index in STRIDE_TWO_BLOCKS else 1
            blocks.append(DepthwiseSeparable(in_channels, out_channels, stride, gate_layer))
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the code's AvgPool2d(7) on the 7x7 map of a 224 input
        self.classifier = nn.Linear(channels[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.data.fill_(1.0)
                module.bias.data.zero_()
            elif isinstance(module, nn.Linear):
                module.weight.data.normal_(0, 0.01)
                module.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def channel_groups(self) -> list[ChannelGroup]:
        """The stem and each pointwise output; the next block's depthwise conv + BN follow them channel-wise."""
        outputs = [("stem.conv", "stem.bn", "stem.gate")]
        outputs += [(f"features.{i}.conv2", f"features.{i}.bn2", f"features.{i}.gate2")
                    for i in range(len(self.features))]
        gates = ["stem.gate"] + [f"features.{i}.gate2" for i in range(len(self.features))]
        groups = []
        for index, producers in enumerate(outputs):
            if index < len(self.features):
                following = f"features.{index}"
                producers = (*producers, f"{following}.conv1", f"{following}.bn1")
                consumers: tuple[str, ...] = (f"{following}.conv2",)
            else:
                consumers = ("classifier",)
            groups.append(ChannelGroup(gate=gates[index], producers=producers, consumers=consumers))
        return groups


def default_channels(width_multiplier: float = 1.0) -> list[int]:
    """The 14 widths (stem + 13 pointwise) times ``width_multiplier`` (the code's expansion 32 -> 40: 1.25)."""
    return [scaled_width(width, width_multiplier) for width in V1_WIDTHS]


@register_backbone
def mobilenet_v1(num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
                 gate_layer: GateLayer | None = None) -> MobileNetV1:
    """MobileNetV1 for 224x224 inputs.

    Args:
        num_classes: outputs of the linear layer.
        channels: 14 widths (stem + each pointwise conv); default :func:`default_channels`.
        width_multiplier: scales the default widths.
        gate_layer: builds the gate placed after the stem BN and each pointwise BN (none when ``None``).
    """
    widths = checked_channels(channels, default_channels(width_multiplier), "mobilenet_v1")
    return MobileNetV1(num_classes, widths, gate_layer)


__all__ = ["DepthwiseSeparable", "MobileNetV1", "StemConv", "default_channels", "mobilenet_v1"]
