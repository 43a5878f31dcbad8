"""A small 3D U-Net (Cicek et al., arXiv:1606.06650), the 3D baseline the thickened 2D paper compares against.

Input ``(B, 1, X, Y, Z)`` with sides multiples of :attr:`UNet3D.divisor`; output logits ``(B, C, X, Y, Z)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from networks.segmentation.blocks import DecoderStage, EncoderStage


class UNet3D(nn.Module):
    """Encoder of ``len(channels)`` stages (2x2x2 max pooling between them), mirrored decoder with skips.

    Args:
        num_classes: Output classes, background included.
        channels: Channels per stage.
        in_channels: Input channels (1 for CT).
    """

    input_kind = "volume"

    def __init__(self, num_classes: int, channels: Sequence[int] = (8, 16, 32, 64), in_channels: int = 1) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"channels must list at least two stages, got {channels}")
        self.num_classes, self.divisor = int(num_classes), 2 ** (len(channels) - 1)
        self.encoder = nn.ModuleList(
            EncoderStage(in_channels if i == 0 else channels[i - 1], c, 3, downsample=i > 0) for i, c in enumerate(channels))
        self.decoder = nn.ModuleList(
            DecoderStage(channels[i], channels[i - 1], channels[i - 1], 3) for i in range(len(channels) - 1, 0, -1))
        self.prediction = nn.Conv3d(channels[0], num_classes, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        skips = []
        features = volume
        for stage in self.encoder:
            features = stage(features)
            skips.append(features)
        out = skips[-1]
        for stage, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            out = stage(out, skip)
        return self.prediction(out)
