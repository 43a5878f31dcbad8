"""Copy the kept channels of a (gated or trained) network into its pruned counterpart.

The pruned network is the same family built at the kept widths, so its state-dict keys are the source's
(minus the gates). Every tensor of a group's producers is indexed along dimension 0 and every consumer's
weight along dimension 1 (arXiv:1909.12579; the conventional baseline fine-tunes from this copy). Gates are
folded in: a kept channel's gate value multiplies its BN's gamma and beta, so the pruned network computes
what the gated one computes with the pruned gates at zero.
"""

from __future__ import annotations

import torch
from torch import nn

from networks.classification.prunable import ChannelGroup


@torch.no_grad()
def copy_kept_channels(source: nn.Module, target: nn.Module, groups: list[ChannelGroup],
                       kept: list[list[int]]) -> None:
    """Fill ``target`` (built at the kept widths, no gates) from ``source`` (full widths) in place."""
    out_index: dict[str, torch.Tensor] = {}
    in_index: dict[str, torch.Tensor] = {}
    gate_scale: dict[str, torch.Tensor] = {}
    for group, indices in zip(groups, kept, strict=True):
        index = torch.as_tensor(indices, dtype=torch.long)
        gate = source.get_submodule(group.gate)
        gated_bn = next(path for path in group.producers if isinstance(source.get_submodule(path), nn.BatchNorm2d))
        if hasattr(gate, "gates"):  # the gate multiplies the output of the group's first BN
            gate_scale[gated_bn] = gate.gates.detach()[index]
        for path in group.producers:
            out_index[path] = index
        for path in group.consumers:
            in_index[path] = index
    source_state = source.state_dict()
    new_state = {}
    for key, value in target.state_dict().items():
        module_path, _, name = key.rpartition(".")
        tensor = source_state[key]
        if module_path in out_index and tensor.ndim >= 1 and name != "num_batches_tracked":
            tensor = tensor.index_select(0, out_index[module_path].to(tensor.device))
        if module_path in in_index and name == "weight" and tensor.ndim >= 2:
            tensor = tensor.index_select(1, in_index[module_path].to(tensor.device))
        if module_path in gate_scale and name in ("weight", "bias"):
            tensor = tensor * gate_scale[module_path].to(tensor)
        if tensor.shape != value.shape:
            raise ValueError(f"{key}: kept-channel copy has shape {tuple(tensor.shape)}, the pruned network "
                             f"{tuple(value.shape)}.")
        new_state[key] = tensor
    target.load_state_dict(new_state)


__all__ = ["copy_kept_channels"]
