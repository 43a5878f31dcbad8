"""The prunable backbone families: their default widths and their channel groups (the zoo builds them).

``width_multiplier`` is the expansion of Pruning from Scratch (arXiv:1909.12579, Sec. 3.1; official ``-e``):
the gated network is a widened copy of the default one, and pruning targets are relative to the default
(unexpanded, ``reference_width_multiplier``) network. Every prunable family is a backbone of the zoo
(:func:`networks.classification.build_backbone`) whose constructor takes ``channels``, ``width_multiplier`` and
``gate_layer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from networks.classification import build_backbone, channel_surgery, cifar_resnet, mobilenet_v1, vgg
from networks.classification.prunable import ChannelGroup, GateLayer


@dataclass(frozen=True)
class PrunableFamily:
    """One prunable backbone.

    Attributes:
        name: the zoo name (``networks.classification.build_backbone``).
        default_channels: ``width_multiplier -> list[int]``, one width per channel group.
        groups_of: ``network -> list[ChannelGroup]``.
    """

    name: str
    default_channels: Callable[[float], list[int]]
    groups_of: Callable[[nn.Module], list[ChannelGroup]]

    def build(self, num_classes: int, *, channels: list[int] | None = None, width_multiplier: float = 1.0,
              gate_layer: GateLayer | None = None) -> nn.Module:
        """The zoo's network at ``channels`` (default widths at ``width_multiplier`` when ``None``)."""
        options = {"channels": channels, "width_multiplier": width_multiplier, "gate_layer": gate_layer}
        return build_backbone(self.name, num_classes, **{key: value for key, value in options.items()
                                                        if value is not None})


def _own_groups(network: nn.Module) -> list[ChannelGroup]:
    return network.channel_groups()


FAMILIES: dict[str, PrunableFamily] = {
    **{f"resnet{depth}": PrunableFamily(f"resnet{depth}", partial(cifar_resnet.default_channels, depth), _own_groups)
       for depth in (20, 56, 110)},
    "vgg16_bn": PrunableFamily("vgg16_bn", vgg.default_channels, _own_groups),
    "mobilenet_v1": PrunableFamily("mobilenet_v1", mobilenet_v1.default_channels, _own_groups),
    "resnet50": PrunableFamily("resnet50", channel_surgery.resnet50_default_channels,
                               channel_surgery.resnet50_channel_groups),
    "mobilenet_v2": PrunableFamily("mobilenet_v2", channel_surgery.mobilenet_v2_default_channels,
                                   channel_surgery.mobilenet_v2_channel_groups),
}


def prunable_family(name: str) -> PrunableFamily:
    """The family registered under ``name``; a ``ValueError`` listing the prunable backbones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"name={name!r} is not a prunable backbone; prunable backbones: "
                         f"{', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name]


def family_of(network: nn.Module) -> PrunableFamily:
    """The family of a network the zoo built (its ``backbone_spec``)."""
    spec = getattr(network, "backbone_spec", None)
    if spec is None:
        raise TypeError(f"network is a {type(network).__name__} not built by networks.classification.build_backbone: "
                        "its prunable family is unknown.")
    return prunable_family(spec.name)


__all__ = ["FAMILIES", "PrunableFamily", "family_of", "prunable_family"]
