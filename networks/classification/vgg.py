"""VGG-16-BN for CIFAR in the convention of the Pruning-from-Scratch code (arXiv:1909.12579).

13 conv3x3-BN-ReLU layers (64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3), average pooling (the code's
``AvgPool2d(2)`` on the 2x2 map of a 32x32 input) and one ``Linear(512, classes)``; BN gamma initialised to
0.5, convs to normal(0, sqrt(2 / (k*k*out))), the linear layer to normal(0, 0.01). 14.72M parameters at 10
classes. ``channels`` gives the 13 conv widths; the channel gate sits after every BN (reference ``gate.py``).

The official ``models/vgg.py`` names its layers ``feature.<i>.{conv,bn}`` (``i`` counts the max-pools too, as
``features`` does here) and ``classifier``; :func:`official_key_to_suite` places its checkpoints.
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

POOL = "M"
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
                                       512, 512, 512)
BN_GAMMA_INIT = 0.5  # the reference code's `m.weight.data.fill_(0.5)`


class ConvBNReLU(nn.Module):
    """conv3x3 - BN - [gate] - ReLU."""

    def __init__(self, in_channels: int, out_channels: int, gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.gate = gate_or_identity(gate_layer, out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.gate(self.bn(self.conv(x))))


class CifarVGG(nn.Module):
    """VGG with BN and a single linear classifier (see the module docstring)."""

    def __init__(self, num_classes: int, channels: list[int], gate_layer: GateLayer | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = iter(channels)
        in_channels = 3
        for entry in VGG16_LAYOUT:
            if entry == POOL:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                width = next(widths)
                layers.append(ConvBNReLU(in_channels, width, gate_layer))
                in_channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.data.fill_(BN_GAMMA_INIT)
                module.bias.data.zero_()
            elif isinstance(module, nn.Linear):
                module.weight.data.normal_(0, 0.01)
                module.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def channel_groups(self) -> list[ChannelGroup]:
        """One group per conv layer; each feeds the next conv (or the classifier)."""
        conv_paths = [f"features.{index}" for index, layer in enumerate(self.features)
                      if isinstance(layer, ConvBNReLU)]
        groups = []
        for position, path in enumerate(conv_paths):
            consumer = f"{conv_paths[position + 1]}.conv" if position + 1 < len(conv_paths) else "classifier"
            groups.append(ChannelGroup(gate=f"{path}.gate", producers=(f"{path}.conv", f"{path}.bn", f"{path}.gate"),
                                       consumers=(consumer,)))
        return groups


_OFFICIAL_LAYER = re.compile(r"feature\.(\d+)\.((?:conv|bn)\.\w+|gates)")
_OFFICIAL_CLASSIFIER = re.compile(r"classifier\.(?:weight|bias)")


def official_key_to_suite(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """Place an entry of an official ``models/vgg.py`` state dict (frankwang345/pruning-from-scratch) in
    :class:`CifarVGG` (``visionsuite.official_weights`` converter): ``feature.<i>.`` -> ``features.<i>.``, the
    gate ``gate.py`` adds during gate learning ``feature.<i>.gates`` -> ``features.<i>.gate.gates``;
    ``None`` for a name the official network does not have."""
    layer = _OFFICIAL_LAYER.fullmatch(name)
    if layer is not None:
        index, rest = layer.groups()
        return f"features.{index}.{'gate.gates' if rest == 'gates' else rest}", tensor
    return (name, tensor) if _OFFICIAL_CLASSIFIER.fullmatch(name) else None


def default_channels(width_multiplier: float = 1.0) -> list[int]:
    """The 13 conv widths of VGG-16 times ``width_multiplier`` (expansion 64 -> 80 is 1.25)."""
    return [scaled_width(int(entry), width_multiplier) for entry in VGG16_LAYOUT if entry != POOL]


@register_backbone
def vgg16_bn(num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
             gate_layer: GateLayer | None = None) -> CifarVGG:
    """CIFAR VGG-16-BN (14.72M parameters at width 1, 10 classes).

    Args:
        num_classes: outputs of the linear layer.
        channels: the 13 conv widths; default :func:`default_channels` at ``width_multiplier``.
        width_multiplier: scales the default widths.
        gate_layer: builds the channel gate placed after every BN (none when ``None``).
    """
    widths = checked_channels(channels, default_channels(width_multiplier), "vgg16_bn")
    return CifarVGG(num_classes, widths, gate_layer)


__all__ = ["CifarVGG", "ConvBNReLU", "default_channels", "official_key_to_suite", "vgg16_bn"]
