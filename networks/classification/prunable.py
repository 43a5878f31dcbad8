"""What a prunable backbone of the zoo declares: its channel groups (Pruning from Scratch, arXiv:1909.12579).

A *channel group* is one gated layer: the modules whose output channels it owns (a conv, its BN, its gate,
and e.g. a depthwise conv + BN that follow it channel for channel) and the modules that read those channels
as input (the next conv or linear layer). Pruning keeps a subset of a group's channels by slicing dimension 0
of every tensor of its ``producers`` and dimension 1 of the weight of its ``consumers``
(``networks.pruning.surgery``); gate learning collects the gates in group order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

GateLayer = Callable[[int], nn.Module]


@dataclass(frozen=True)
class ChannelGroup:
    """One gated layer of a prunable network, by module path (``model.get_submodule`` names).

    Attributes:
        gate: path of the gate module (an ``nn.Identity`` when the network was built without gates).
        producers: modules whose tensors are sliced along dimension 0 (conv, BN, gate, depthwise conv + BN).
        consumers: modules whose weight is sliced along dimension 1 (the next conv / linear layer).
    """

    gate: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]


def gate_or_identity(gate_layer: GateLayer | None, channels: int) -> nn.Module:
    """``gate_layer(channels)``, or ``nn.Identity()`` for a network without gates."""
    return nn.Identity() if gate_layer is None else gate_layer(channels)


def scaled_width(width: int, width_multiplier: float) -> int:
    """``width`` times ``width_multiplier``, rounded (the official code's expansion ``-e``: 16 -> 80 is 5.0)."""
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier={width_multiplier}: must be > 0.")
    return max(1, int(round(width * width_multiplier)))


def checked_channels(channels: list[int] | None, default: list[int], what: str) -> list[int]:
    """``channels`` (or ``default``), checked to have the default's length and positive entries."""
    if channels is None:
        return list(default)
    channels = [int(value) for value in channels]
    if len(channels) != len(default):
        raise ValueError(f"channels has {len(channels)} entries, but {what} has {len(default)} gated layers "
                         f"(expected {len(default)}, one per gated layer).")
    for index, value in enumerate(channels):
        if value < 1:
            raise ValueError(f"channels[{index}]={value}: every gated layer of {what} needs at least one channel.")
    return channels


__all__ = ["ChannelGroup", "GateLayer", "checked_channels", "gate_or_identity", "scaled_width"]
