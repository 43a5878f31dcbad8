"""Stacked Hourglass backbone as used by CornerNet (arXiv:1808.01244, Sec. 4.1) and CenterNet (arXiv:1904.08189).

* Stem: 7x7 conv (stride 2, ``stem_channels`` = 128) then a stride-2 residual block (to ``channels[0]`` =
  256): output stride 4, so a 511x511 input gives 128x128 maps.
* Each hourglass module is recursive with ``depth = len(channels) - 1`` levels. At level ``d``: an upper
  branch of ``blocks[d]`` residual blocks; a lower branch that goes down with a stride-2 residual block (no
  max pooling) to ``channels[d + 1]``, recurses (or, at the bottom, applies ``blocks[depth]`` residual
  blocks), comes back to ``channels[d]`` and is upsampled x2 (nearest); the two branches are added.
  CenterNet: depth 5, channels ``[256, 256, 384, 384, 384, 512]``, blocks ``[2, 2, 2, 2, 2, 4]``.
* After each hourglass a 3x3 conv-BN-ReLU (``head_channels`` = 256) gives the features the prediction heads
  read. Between stacks (CenterNet-104 has two) the input of the next hourglass is
  ``residual(ReLU(BN(conv1x1(previous input)) + BN(conv1x1(features))))``: the intermediate supervision of
  Newell et al. (arXiv:1603.06937) as CornerNet adds it; the loss is applied to every stack's heads.

Upsampling uses the size of the upper branch, so any input size works (sizes that are a multiple of
``4 * 2**depth`` avoid rounding at the borders).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from networks.detection.corner_pooling import ConvBnRelu


class Residual(nn.Module):
    """Residual block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the input (1x1 conv-BN when the shape changes), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.skip(x))


def _residuals(in_channels: int, out_channels: int, count: int, stride: int = 1) -> nn.Sequential:
    """``count`` residual blocks; the first one changes channels (and stride), the others keep them."""
    layers = [Residual(in_channels, out_channels, stride)]
    layers += [Residual(out_channels, out_channels) for _ in range(count - 1)]
    return nn.Sequential(*layers)


def _residuals_reversed(in_channels: int, out_channels: int, count: int) -> nn.Sequential:
    """``count`` residual blocks; the last one changes channels (the way back up of an hourglass level)."""
    layers = [Residual(in_channels, in_channels) for _ in range(count - 1)]
    layers.append(Residual(in_channels, out_channels))
    return nn.Sequential(*layers)


class HourglassModule(nn.Module):
    """One hourglass: ``len(channels) - 1`` recursive down/up levels (see the module docstring)."""

    def __init__(self, channels: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        if len(channels) < 2 or len(channels) != len(blocks):
            raise ValueError(
                f"channels {list(channels)} and blocks {list(blocks)} need the same length, at least 2"
            )
        if min(blocks) < 1 or min(channels) < 1:
            raise ValueError(f"channels and blocks must be positive, got {list(channels)} and {list(blocks)}")
        current, lower = channels[0], channels[1]
        self.upper = _residuals(current, current, blocks[0])
        self.down = _residuals(current, lower, blocks[0], stride=2)
        if len(channels) > 2:
            self.inner: nn.Module = HourglassModule(channels[1:], blocks[1:])
        else:
            self.inner = _residuals(lower, lower, blocks[1])
        self.up = _residuals_reversed(lower, current, blocks[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upper = self.upper(x)
        lower = self.up(self.inner(self.down(x)))
        return upper + F.interpolate(lower, size=upper.shape[-2:], mode="nearest")


class StackedHourglass(nn.Module):
    """Stem + ``stacks`` hourglasses with intermediate supervision; returns the features of every stack.

    Args:
        stacks: Number of hourglass modules (CenterNet-104: 2, CenterNet-52: 1).
        channels: Channels per level, ``channels[0]`` at the hourglass input (``[256, 256, 384, 384, 384, 512]``).
        blocks: Residual blocks per level (``[2, 2, 2, 2, 2, 4]``).
        stem_channels: Channels of the 7x7 stem convolution (128).
        head_channels: Channels of the 3x3 conv after each hourglass, read by the heads (256).
        in_channels: Image channels.
    """

    def __init__(
        self,
        stacks: int = 2,
        channels: Sequence[int] = (256, 256, 384, 384, 384, 512),
        blocks: Sequence[int] = (2, 2, 2, 2, 2, 4),
        stem_channels: int = 128,
        head_channels: int = 256,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if stacks < 1:
            raise ValueError(f"stacks must be >= 1, got {stacks}")
        width = channels[0]
        self.stacks = stacks
        self.depth = len(channels) - 1
        self.stem = nn.Sequential(
            ConvBnRelu(in_channels, stem_channels, 7, stride=2), Residual(stem_channels, width, stride=2)
        )
        self.hourglasses = nn.ModuleList(HourglassModule(channels, blocks) for _ in range(stacks))
        self.feature_convs = nn.ModuleList(ConvBnRelu(width, head_channels, 3) for _ in range(stacks))
        self.inter_input = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width))
            for _ in range(stacks - 1)
        )
        self.inter_features = nn.ModuleList(
            nn.Sequential(nn.Conv2d(head_channels, width, 1, bias=False), nn.BatchNorm2d(width))
            for _ in range(stacks - 1)
        )
        self.inter_residual = nn.ModuleList(Residual(width, width) for _ in range(stacks - 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, images: torch.Tensor, all_stacks: bool = True) -> list[torch.Tensor]:
        """Features of every stack (``all_stacks``) or of the last one only, each ``(N, head_channels, H/4, W/4)``."""
        x = self.stem(images)
        features: list[torch.Tensor] = []
        for index in range(self.stacks):
            stack_features = self.feature_convs[index](self.hourglasses[index](x))
            if all_stacks or index == self.stacks - 1:
                features.append(stack_features)
            if index < self.stacks - 1:
                merged = self.inter_input[index](x) + self.inter_features[index](stack_features)
                x = self.inter_residual[index](self.relu(merged))
        return features


def output_size(input_size: int) -> int:
    """Side of the stride-4 output maps for an input side (two stride-2 layers with ``ceil``): 511 -> 128."""
    half = (input_size + 1) // 2
    return (half + 1) // 2
