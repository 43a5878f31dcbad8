"""torchvision's ResNet-50 and MobileNetV2 at explicit per-layer widths, with Pruning-from-Scratch gates.

The zoo's constructors (:func:`networks.classification.torchvision_models.resnet50` / ``mobilenet_v2``) build
torchvision's network and, when their ``channels`` / ``width_multiplier`` / ``gate_layer`` differ from the
defaults, resize it here layer by layer: each channel group's producing conv / BN are rebuilt at the group's width
and its consuming conv / linear at that input width, and torchvision's initialisation is applied again. Gate
placement follows the reference ``gate.py`` of arXiv:1909.12579: ResNet-50 bottlenecks after ``bn1`` and ``bn2``
(the two inner widths; the residual stream is not pruned); MobileNetV2 the expansion (hidden) channels of every
inverted residual block, the stem and the final 1x1 conv (the official ``mobilenet_v2`` channel list:
32, 96, 144, 144, 192 x3, 384 x4, 576 x3, 960 x3, 1280). A gate lives inside its BN
(:class:`BatchNormThenGate`) so the BN's state-dict keys stay torchvision's.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from networks.classification.prunable import ChannelGroup, GateLayer, scaled_width

RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET50_INNER = (64, 128, 256, 512)
MOBILENET_V2_WIDTHS = (32, 96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960, 1280)


class BatchNormThenGate(nn.BatchNorm2d):
    """A BatchNorm2d whose output is multiplied by a channel gate (``self.gate``)."""

    def __init__(self, num_features: int, gate_layer: GateLayer) -> None:
        super().__init__(num_features)
        self.gate = gate_layer(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(super().forward(x))


def resized(module: nn.Module, *, out_channels: int | None = None, in_channels: int | None = None) -> nn.Module:
    """A fresh copy of a Conv2d / BatchNorm2d / Linear with new output and/or input widths.

    A depthwise conv (``groups == in == out``) keeps being depthwise: its width follows ``out_channels``.
    """
    if isinstance(module, nn.Conv2d):
        depthwise = module.groups == module.in_channels == module.out_channels and module.groups > 1
        out_width = out_channels or module.out_channels
        in_width = out_width if depthwise else (in_channels or module.in_channels)
        return nn.Conv2d(in_width, out_width, module.kernel_size, module.stride, module.padding, module.dilation,
                         groups=out_width if depthwise else module.groups, bias=module.bias is not None)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(out_channels or module.num_features, eps=module.eps, momentum=module.momentum)
    if isinstance(module, nn.Linear):
        return nn.Linear(in_channels or module.in_features, module.out_features, bias=module.bias is not None)
    raise TypeError(f"module is a {type(module).__name__}; only Conv2d, BatchNorm2d and Linear are resized.")


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def resize_groups(model: nn.Module, groups: list[ChannelGroup], widths: list[int], gate_layer: GateLayer | None,
                  gated_bns: list[str]) -> None:
    """Rebuild every group's producers at its width and its consumers at that input width (in place).

    ``gated_bns[i]`` is the BN of group ``i`` that receives the gate when ``gate_layer`` is given.
    """
    for group, width, bn_path in zip(groups, widths, gated_bns, strict=True):
        for path in group.producers:
            if path == group.gate:
                continue
            _set(model, path, resized(model.get_submodule(path), out_channels=width))
        for path in group.consumers:
            _set(model, path, resized(model.get_submodule(path), in_channels=width))
        if gate_layer is not None:
            bn = model.get_submodule(bn_path)
            _set(model, bn_path, BatchNormThenGate(bn.num_features, gate_layer))


def _torchvision_init(model: nn.Module) -> None:
    """torchvision's initialisation of ResNet / MobileNetV2 (kaiming fan-out convs, BN 1/0, linear)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------------------- ResNet-50
def resnet50_default_channels(width_multiplier: float = 1.0) -> list[int]:
    """The 32 inner widths (``conv1``, ``conv2`` of each of the 16 bottlenecks) times ``width_multiplier``."""
    return [scaled_width(width, width_multiplier)
            for blocks, width in zip(RESNET50_BLOCKS, RESNET50_INNER, strict=True) for _ in range(2 * blocks)]


def resnet50_channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Two groups per bottleneck: ``conv1/bn1 -> conv2`` and ``conv2/bn2 -> conv3``."""
    groups = []
    for stage, blocks in enumerate(RESNET50_BLOCKS, start=1):
        for index in range(blocks):
            path = f"layer{stage}.{index}"
            for first, second in (("1", "2"), ("2", "3")):
                bn = f"{path}.bn{first}"
                groups.append(ChannelGroup(gate=f"{bn}.gate", producers=(f"{path}.conv{first}", bn, f"{bn}.gate"),
                                           consumers=(f"{path}.conv{second}",)))
    return groups


def resize_resnet50(model: nn.Module, widths: list[int], gate_layer: GateLayer | None,
                    zero_init_residual: bool = False) -> None:
    """Set torchvision's ResNet-50 ``model`` to the 32 bottleneck inner widths ``widths``, with gates after bn1 / bn2
    when ``gate_layer`` is given, and initialise it again as torchvision does (in place)."""
    groups = resnet50_channel_groups(model)
    resize_groups(model, groups, widths, gate_layer, [group.producers[1] for group in groups])
    _torchvision_init(model)
    if zero_init_residual:  # torchvision's option, applied again after the new initialisation
        for module in model.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)


# ---------------------------------------------------------------------------------------------- MobileNetV2
def mobilenet_v2_default_channels(width_multiplier: float = 1.0) -> list[int]:
    """Stem, the 16 hidden widths and the last 1x1 conv (18 entries) times ``width_multiplier``."""
    return [scaled_width(width, width_multiplier) for width in MOBILENET_V2_WIDTHS]


def mobilenet_v2_channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Stem (feeding block 1's depthwise conv), each block's hidden width, and the last 1x1 conv."""
    groups = [ChannelGroup(gate="features.0.1.gate",
                           producers=("features.0.0", "features.0.1", "features.0.1.gate",
                                      "features.1.conv.0.0", "features.1.conv.0.1"),
                           consumers=("features.1.conv.1",))]
    for block in range(2, 18):
        path = f"features.{block}.conv"
        groups.append(ChannelGroup(gate=f"{path}.0.1.gate",
                                   producers=(f"{path}.0.0", f"{path}.0.1", f"{path}.0.1.gate", f"{path}.1.0",
                                              f"{path}.1.1"),
                                   consumers=(f"{path}.2",)))
    groups.append(ChannelGroup(gate="features.18.1.gate", producers=("features.18.0", "features.18.1",
                                                                     "features.18.1.gate"),
                               consumers=("classifier.1",)))
    return groups


def resize_mobilenet_v2(model: nn.Module, widths: list[int], gate_layer: GateLayer | None) -> None:
    """Set torchvision's MobileNetV2 ``model`` to the 18 prunable widths ``widths`` (stem, hidden widths, last 1x1
    conv), with gates when ``gate_layer`` is given, and initialise it again as torchvision does (in place)."""
    groups = mobilenet_v2_channel_groups(model)
    resize_groups(model, groups, widths, gate_layer, [group.producers[1] for group in groups])
    _torchvision_init(model)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


__all__ = ["BatchNormThenGate", "mobilenet_v2_channel_groups", "mobilenet_v2_default_channels", "resize_groups",
           "resize_mobilenet_v2", "resize_resnet50", "resized", "resnet50_channel_groups", "resnet50_default_channels"]
