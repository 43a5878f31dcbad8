"""The prunable backbone families: how to build one at given widths, its default widths and its groups.

``width_multiplier`` is the expansion of Pruning from Scratch (arXiv:1909.12579, Sec. 3.1; official ``-e``):
the gated network is a widened copy of the default one, and pruning targets are relative to the default
(unexpanded, ``reference_width_multiplier``) network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from networks.classification import channel_surgery, cifar_resnet, mobilenet_v1, vgg
from networks.classification.prunable import ChannelGroup, GateLayer
from visionsuite.errors import ConfigError


@dataclass(frozen=True)
class PrunableFamily:
    """One prunable backbone.

    Attributes:
        name: the zoo name (``networks.classification.BACKBONES``).
        constructor: ``(num_classes, *, channels, width_multiplier, gate_layer) -> nn.Module``.
        default_channels: ``width_multiplier -> list[int]``, one width per channel group.
        groups_of: ``network -> list[ChannelGroup]``.
    """

    name: str
    constructor: Callable[..., nn.Module]
    default_channels: Callable[[float], list[int]]
    groups_of: Callable[[nn.Module], list[ChannelGroup]]

    def build(self, num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
              gate_layer: GateLayer | None = None) -> nn.Module:
        """The network at ``channels`` (default widths at ``width_multiplier`` when ``None``)."""
        return self.constructor(num_classes, channels=channels, width_multiplier=width_multiplier,
                                gate_layer=gate_layer)


def _own_groups(network: nn.Module) -> list[ChannelGroup]:
    return network.channel_groups()


FAMILIES: dict[str, PrunableFamily] = {
    **{f"resnet{depth}": PrunableFamily(f"resnet{depth}", partial(cifar_resnet.cifar_resnet, depth),
                                        partial(cifar_resnet.default_channels, depth), _own_groups)
       for depth in (20, 56, 110)},
    "vgg16_bn": PrunableFamily("vgg16_bn", vgg.vgg16_bn, vgg.default_channels, _own_groups),
    "mobilenet_v1": PrunableFamily("mobilenet_v1", mobilenet_v1.mobilenet_v1, mobilenet_v1.default_channels,
                                   _own_groups),
    "resnet50": PrunableFamily("resnet50", channel_surgery.prunable_resnet50,
                               channel_surgery.resnet50_default_channels, channel_surgery.resnet50_channel_groups),
    "mobilenet_v2": PrunableFamily("mobilenet_v2", channel_surgery.prunable_mobilenet_v2,
                                   channel_surgery.mobilenet_v2_default_channels,
                                   channel_surgery.mobilenet_v2_channel_groups),
}


def prunable_family(name: str, key: str = "model.backbone.name") -> PrunableFamily:
    """The family registered under ``name``; an error listing the prunable backbones otherwise."""
    if name not in FAMILIES:
        raise ConfigError(f"{key}={name!r} is not prunable; prunable backbones: {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name]


__all__ = ["FAMILIES", "PrunableFamily", "prunable_family"]
