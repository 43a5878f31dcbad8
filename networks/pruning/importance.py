"""Channel importance: the learned gates (Pruning from Scratch) or the conventional criteria of the baseline.

* ``gates``: the gate values learned on random weights (arXiv:1909.12579, Sec. 3.2);
* ``bn_scale``: |gamma| of the channel's BatchNorm after training (network slimming, Liu et al.,
  arXiv:1708.06519);
* ``filter_l1``: L1 norm of the channel's convolution filter after training (Li et al., arXiv:1608.08710).
"""

from __future__ import annotations

import torch
from torch import nn

from networks.classification.prunable import ChannelGroup
from networks.pruning.gates import channel_gates

CRITERIA = ("gates", "bn_scale", "filter_l1")


def _first(network: nn.Module, group: ChannelGroup, kind: type[nn.Module]) -> nn.Module:
    for path in group.producers:
        module = network.get_submodule(path)
        if isinstance(module, kind):
            return module
    raise ValueError(f"channel group {group.gate} has no {kind.__name__} producer.")


@torch.no_grad()
def channel_scores(network: nn.Module, groups: list[ChannelGroup], criterion: str) -> list[torch.Tensor]:
    """One score per channel of every group (higher is kept first)."""
    if criterion == "gates":
        return [gate.gates.detach().clone() for gate in channel_gates(network, groups)]
    if criterion == "bn_scale":
        return [_first(network, group, nn.BatchNorm2d).weight.detach().abs().clone() for group in groups]
    if criterion == "filter_l1":
        return [_first(network, group, nn.Conv2d).weight.detach().abs().flatten(1).sum(dim=1) for group in groups]
    raise ValueError(f"criterion={criterion!r}: use one of {', '.join(CRITERIA)}.")


@torch.no_grad()
def silence_pruned_channels(network: nn.Module, groups: list[ChannelGroup], kept: list[list[int]]) -> None:
    """Make the pruned channels output zero in place: gates to 0 where the network has gates, else the BN's
    gamma and beta to 0 (for a conv-BN-ReLU feeding a conv, the same outputs as removing the channels)."""
    for group, indices in zip(groups, kept, strict=True):
        bn = _first(network, group, nn.BatchNorm2d)
        mask = torch.ones(bn.num_features, dtype=torch.bool, device=bn.weight.device)
        mask[indices] = False
        gate = network.get_submodule(group.gate)
        if hasattr(gate, "gates"):
            gate.gates[mask] = 0.0
        else:
            bn.weight[mask] = 0.0
            bn.bias[mask] = 0.0


__all__ = ["CRITERIA", "channel_scores", "silence_pruned_channels"]
