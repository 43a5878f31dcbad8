"""CIFAR ResNet-20/56/110 in the convention of the Pruning-from-Scratch code (arXiv:1909.12579).

Basic blocks (two 3x3 convs) whose shortcut is a 1x1 conv + BN wherever the stride or the width changes
(projection, not the zero-padding shortcut of He et al.'s CIFAR ResNets); stem 3x3 conv 16 + BN + ReLU,
stages of width 16 / 32 / 64, global average pooling (the code's ``AvgPool2d(8)`` on the 8x8 map of a 32x32
input) and one linear layer. Sizes at 10 classes: ResNet-56 0.856M, ResNet-110 1.731M parameters.

Per-layer widths: ``channels`` has one entry per block, the block's inner width (``conv1``'s output);
``width_multiplier`` scales the stem and the residual stream (the official code's expansion ``-e 80`` is a
multiplier of 5 on 16, and its pruned networks keep that widened stream). The channel gate of Pruning from
Scratch sits after ``bn1`` of each block (the inner channels), as in the reference ``gate.py``.

The module and parameter names are those of the official ``models/resnet.py`` (``conv1``, ``bn1``,
``layer<s>.<b>.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}``, ``linear``), so the official checkpoints load
through :func:`official_key_to_suite`; the gate of ``gate.py`` (``layer<s>.<b>.gates``) is ``gate1.gates`` here.
"""

from __future__ import annotations

import math
import re

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

STAGE_WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    """conv3x3-BN-[gate]-ReLU-conv3x3-BN + shortcut, ReLU (the gate multiplies the BN output, Sec. 3)."""

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, stride: int,
                 gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inner_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner_channels)
        self.gate1 = gate_or_identity(gate_layer, inner_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.gate1(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of the Pruning-from-Scratch code (see the module docstring)."""

    def __init__(self, depth: int, num_classes: int, inner_channels: list[int], stem_width: int,
                 gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        blocks = blocks_per_stage(depth)
        self.depth = depth
        self.conv1 = nn.Conv2d(3, stem_width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        in_channels = stem_width
        stages = []
        for stage, factor in enumerate((1, 2, 4)):
            out_channels = stem_width * factor
            layers = []
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(BasicBlock(in_channels, inner_channels[stage * blocks + index], out_channels,
                                         stride, gate_layer))
                in_channels = out_channels
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # the reference's He init: normal(0, sqrt(2 / (k*k*out)))
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.data.fill_(1.0)
                module.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(torch.flatten(self.avgpool(out), 1))

    def channel_groups(self) -> list[ChannelGroup]:
        """One group per block: the inner channels (``conv1``/``bn1``/``gate1`` -> ``conv2``)."""
        groups = []
        for stage in ("layer1", "layer2", "layer3"):
            for index in range(len(getattr(self, stage))):
                path = f"{stage}.{index}"
                groups.append(ChannelGroup(gate=f"{path}.gate1", producers=(f"{path}.conv1", f"{path}.bn1",
                                                                             f"{path}.gate1"),
                                           consumers=(f"{path}.conv2",)))
        return groups


_OFFICIAL_KEY = re.compile(r"(?:conv1|bn1|linear|layer[123]\.\d+\.(?:conv[12]|bn[12]|shortcut\.[01]))\.\w+")
_OFFICIAL_GATE = re.compile(r"(layer[123]\.\d+)\.gates")


def official_key_to_suite(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """Place an entry of an official ``models/resnet.py`` state dict (frankwang345/pruning-from-scratch) in
    :class:`CifarResNet` (``visionsuite.official_weights`` converter): the names are the same, except the gate
    that ``gate.py`` adds to each block during gate learning (``layer1.0.gates`` -> ``layer1.0.gate1.gates``);
    ``None`` for a name the official network does not have."""
    gate = _OFFICIAL_GATE.fullmatch(name)
    if gate is not None:
        return f"{gate.group(1)}.gate1.gates", tensor
    return (name, tensor) if _OFFICIAL_KEY.fullmatch(name) else None


def blocks_per_stage(depth: int) -> int:
    """Blocks per stage of a CIFAR ResNet of ``depth`` layers (``6n + 2``)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth={depth}: a CIFAR ResNet has depth 6n+2 (20, 56, 110...).")
    return (depth - 2) // 6


def default_channels(depth: int, width_multiplier: float = 1.0) -> list[int]:
    """Inner width of each block: 16/32/64 per stage times ``width_multiplier`` (the code's ``expanded_cfg``)."""
    blocks = blocks_per_stage(depth)
    return [scaled_width(width, width_multiplier) for width in STAGE_WIDTHS for _ in range(blocks)]


def cifar_resnet(depth: int, num_classes: int, *, channels: list[int] | None = None,
                 width_multiplier: float = 1.0, gate_layer: GateLayer | None = None) -> CifarResNet:
    """A CIFAR ResNet of ``depth`` layers.

    Args:
        depth: 6n + 2.
        num_classes: outputs of the linear layer.
        channels: inner width of each block (``3n`` entries); default :func:`default_channels`.
        width_multiplier: scales the stem / residual stream (16 -> 16 * multiplier) and the default inner widths.
        gate_layer: builds the channel gate placed after each block's ``bn1`` (none when ``None``).
    """
    inner = checked_channels(channels, default_channels(depth, width_multiplier), f"resnet{depth}")
    return CifarResNet(depth, num_classes, inner, scaled_width(16, width_multiplier), gate_layer)


@register_backbone
def resnet20(num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
             gate_layer: GateLayer | None = None) -> CifarResNet:
    """CIFAR ResNet-20 (0.27M parameters at width 1, 10 classes)."""
    return cifar_resnet(20, num_classes, channels=channels, width_multiplier=width_multiplier, gate_layer=gate_layer)


@register_backbone
def resnet56(num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
             gate_layer: GateLayer | None = None) -> CifarResNet:
    """CIFAR ResNet-56 (0.856M parameters at width 1, 10 classes)."""
    return cifar_resnet(56, num_classes, channels=channels, width_multiplier=width_multiplier, gate_layer=gate_layer)


@register_backbone
def resnet110(num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
              gate_layer: GateLayer | None = None) -> CifarResNet:
    """CIFAR ResNet-110 (1.731M parameters at width 1, 10 classes)."""
    return cifar_resnet(110, num_classes, channels=channels, width_multiplier=width_multiplier,
                        gate_layer=gate_layer)


__all__ = ["BasicBlock", "CifarResNet", "blocks_per_stage", "cifar_resnet", "default_channels",
           "official_key_to_suite", "resnet110", "resnet20", "resnet56"]
