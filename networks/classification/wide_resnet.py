"""Wide Residual Networks (Zagoruyko & Komodakis, arXiv:1605.07146) for 32x32 inputs: WRN-28-10.

WRN-d-k (Sec. 2, Table 1 of arXiv:1605.07146): a 3x3 stem of 16 channels, then three groups of
``(d - 4) / 6`` pre-activation basic blocks (BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3) of widths
``16k, 32k, 64k``, the first block of groups 2 and 3 with stride 2; a 1x1 convolution on the shortcut where
the width or the stride changes; a final BN-ReLU, global average pooling and one linear layer. WRN-28-10 has
36.5M parameters at 10 classes (the heavy-augmentation network of AutoAugment, arXiv:1805.09501, and of the
AugRefine CIFAR experiments, arXiv:1909.09148).

The widths are an explicit list (``channels = [stem, group1, group2, group3]``) and can be scaled by
``width_multiplier``, so expanded or pruned variants are built by the same constructor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from networks.classification.registry import register_backbone


class WideBasicBlock(nn.Module):
    """Pre-activation basic block of a WRN (Fig. 1(b) of arXiv:1605.07146, with dropout between the convs)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.dropout = dropout
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        # The official code feeds the shortcut conv the pre-activated input when the shape changes.
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        return self.conv2(out) + shortcut


class WideResNet(nn.Module):
    """WRN for CIFAR-sized inputs (see the module docstring).

    Args:
        blocks_per_group: ``(depth - 4) / 6``.
        channels: ``[stem, group1, group2, group3]`` output widths.
        num_classes: width of the final linear layer.
        dropout: dropout rate inside each block (0.3 in some WRN runs; 0 in AutoAugment's WRN-28-10).
        in_channels: image channels.
    """

    def __init__(self, blocks_per_group: int, channels: Sequence[int], num_classes: int, dropout: float = 0.0,
                 in_channels: int = 3) -> None:
        super().__init__()
        stem, *groups = (int(width) for width in channels)
        self.stem = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        previous = stem
        for group_index, width in enumerate(groups):
            for block_index in range(blocks_per_group):
                stride = 2 if group_index > 0 and block_index == 0 else 1
                layers.append(WideBasicBlock(previous, width, stride, dropout))
                previous = width
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(previous)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        self._initialise()

    def _initialise(self) -> None:
        # He (fan_out) init for convolutions, BN at (1, 0), zero linear bias: the official WRN code.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = F.relu(self.bn(out))
        return self.fc(torch.flatten(self.pool(out), 1))


def wide_resnet(depth: int, widen_factor: int, num_classes: int, *, channels: Sequence[int] | None = None,
                width_multiplier: float = 1.0, dropout: float = 0.0, in_channels: int = 3) -> WideResNet:
    """WRN-``depth``-``widen_factor`` (Table 1 of arXiv:1605.07146).

    Args:
        depth: total depth ``6n + 4`` (28 for WRN-28-10).
        widen_factor: k, the widening of the three groups (10 for WRN-28-10).
        num_classes: width of the final linear layer.
        channels: explicit ``[stem, group1, group2, group3]`` widths (overrides ``widen_factor``).
        width_multiplier: scales every width (rounded, at least 1 channel).
        dropout: dropout rate inside the blocks.
        in_channels: image channels.
    """
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth={depth}: a WideResNet has depth 6n + 4 with n >= 1 (e.g. 16, 22, 28, 40).")
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier={width_multiplier}: must be > 0.")
    widths = list(channels) if channels is not None else [16, 16 * widen_factor, 32 * widen_factor,
                                                          64 * widen_factor]
    if len(widths) != 4 or any(int(width) <= 0 for width in widths):
        raise ValueError(f"channels={widths}: a WideResNet takes 4 positive widths [stem, group1, group2, group3].")
    widths = [max(1, round(int(width) * width_multiplier)) for width in widths]
    return WideResNet((depth - 4) // 6, widths, num_classes, dropout=dropout, in_channels=in_channels)


@register_backbone
def wrn28_10(num_classes: int = 10, **options: object) -> WideResNet:
    """WRN-28-10 (36.5M parameters at 10 classes); ``options`` as :func:`wide_resnet`."""
    return wide_resnet(28, 10, num_classes, **options)  # type: ignore[arg-type]
