"""The channel gate of Pruning from Scratch (arXiv:1909.12579, Sec. 3.2, Eq. 2).

A scalar gate per channel, initialised to 1, multiplies the BN output before the non-linearity; only the
gates are trained (on the network's random weights), and they are clamped to [0, 1] after every step.
"""

from __future__ import annotations

import torch
from torch import nn

from networks.classification.prunable import ChannelGroup


class ChannelGate(nn.Module):
    """``x * gates`` per channel; ``gates`` starts at 1 (the reference ``gate.py``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gates.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.gates.numel()}"


def channel_gates(network: nn.Module, groups: list[ChannelGroup]) -> list[ChannelGate]:
    """The gate module of every group, in group order; an error when the network was built without gates."""
    gates = []
    for group in groups:
        module = network.get_submodule(group.gate)
        if not isinstance(module, ChannelGate):
            raise ValueError(f"{group.gate} is a {type(module).__name__}, not a ChannelGate: build the network "
                             "with gate_layer=ChannelGate.")
        gates.append(module)
    return gates


@torch.no_grad()
def clamp_gates(gates: list[ChannelGate]) -> None:
    """Clamp every gate to [0, 1] in place (after each optimizer step, as the reference code does)."""
    for gate in gates:
        gate.gates.clamp_(0.0, 1.0)


__all__ = ["ChannelGate", "channel_gates", "clamp_gates"]
