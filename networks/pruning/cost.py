"""Multiply-adds of a prunable network as a function of its per-group widths, without rebuilding it.

One forward pass of the network (on PyTorch's ``meta`` device: shapes only, no arithmetic) records, for every
convolution and linear layer, its output size and which channel group sets its input and output widths. The
multiply-adds at any widths are then a sum of integer products, so the bisection of Pruning from Scratch
(arXiv:1909.12579, Sec. 3.3) evaluates a candidate structure in microseconds. The convention is the one of
``visionsuite.complexity.count_multiply_adds`` (what ``mode=summary`` prints: convolutions and linear layers,
``out_elements * in_channels / groups * kernel_area``); the tests check both agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from networks.classification.prunable import ChannelGroup


@dataclass(frozen=True)
class LayerCost:
    """One conv / linear layer: multiply-adds per (input channel x output channel), or per channel if depthwise."""

    path: str
    unit_cost: int
    in_channels: int
    out_channels: int
    in_group: int | None
    out_group: int | None
    depthwise: bool


class MultiplyAddTable:
    """Multiply-adds of a network family at any per-group widths (see the module docstring).

    Args:
        network: the network at its full widths (its parameters may live on ``meta``).
        groups: its channel groups.
        input_size: the side of the square RGB input the multiply-adds are counted at.
        in_channels: channels of the input image.
    """

    def __init__(self, network: nn.Module, groups: Sequence[ChannelGroup], input_size: int,
                 in_channels: int = 3) -> None:
        out_group = {path: index for index, group in enumerate(groups) for path in group.producers}
        in_group = {path: index for index, group in enumerate(groups) for path in group.consumers}
        spatial: dict[str, int] = {}
        hooks = []
        for path, module in network.named_modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                hooks.append(module.register_forward_hook(_recorder(path, spatial)))
        device = next(network.parameters()).device
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                network(torch.zeros(1, in_channels, input_size, input_size, device=device))
        finally:
            network.train(was_training)
            for hook in hooks:
                hook.remove()
        layers = []
        for path, module in network.named_modules():
            if path not in spatial:
                continue
            if isinstance(module, nn.Linear):
                layers.append(LayerCost(path, 1, module.in_features, module.out_features, in_group.get(path),
                                        out_group.get(path), False))
                continue
            kernel_area = module.kernel_size[0] * module.kernel_size[1]
            depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
            if module.groups > 1 and not depthwise:
                raise ValueError(f"{path}: grouped (not depthwise) convolutions are not prunable here.")
            layers.append(LayerCost(path, spatial[path] * kernel_area, module.in_channels, module.out_channels,
                                    in_group.get(path), out_group.get(path), depthwise))
        self.layers = layers
        self.num_groups = len(groups)
        # Vectorised form: cost = sum(unit * in_width * out_width) (depthwise: unit * out_width).
        self._unit = np.array([layer.unit_cost for layer in layers], dtype=np.int64)
        self._fixed_in = np.array([1 if layer.depthwise else layer.in_channels for layer in layers], dtype=np.int64)
        self._fixed_out = np.array([layer.out_channels for layer in layers], dtype=np.int64)
        self._in_index = np.array([-1 if layer.depthwise or layer.in_group is None else layer.in_group
                                   for layer in layers], dtype=np.int64)
        self._out_index = np.array([-1 if layer.out_group is None else layer.out_group for layer in layers],
                                   dtype=np.int64)

    def multiply_adds(self, widths: Sequence[int]) -> int:
        """Multiply-adds of the network with group ``i`` at ``widths[i]`` channels."""
        if len(widths) != self.num_groups:
            raise ValueError(f"{len(widths)} widths for {self.num_groups} channel groups.")
        padded = np.append(np.asarray(widths, dtype=np.int64), 0)  # index -1 -> the layer's own width
        in_width = np.where(self._in_index >= 0, padded[self._in_index], self._fixed_in)
        out_width = np.where(self._out_index >= 0, padded[self._out_index], self._fixed_out)
        return int(np.sum(self._unit * in_width * out_width))


def _recorder(path: str, spatial: dict[str, int]):
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        spatial[path] = int(output.shape[-1] * output.shape[-2]) if output.ndim == 4 else 1
    return hook


def meta_network(build, *args, **kwargs) -> nn.Module:
    """``build(*args, **kwargs)`` on the ``meta`` device: shapes without memory or initialisation cost."""
    with torch.device("meta"):
        return build(*args, **kwargs)


__all__ = ["LayerCost", "MultiplyAddTable", "meta_network"]
