"""Thickened 2D networks (Yu et al., "Thickened 2D Networks for 3D Medical Image Segmentation", arXiv:1904.01150).

The input of a 2D network is thickened to a stack of ``2k+1`` neighbouring slices, and the network segments the
centre slice. The abstract names the problem and the two remedies we implement:

* "A major information loss happens when a large number of 2D slices are fused at the first convolutional
  layer": :func:`plain_unet2d` is that baseline (the slices are the input channels of the first convolution).
* "(i) postpones slice fusion": in :class:`ThickenedUNet2D` the first ``fusion_depth`` encoder stages run on
  every slice separately with shared weights (the slices are folded into the batch); the per-slice features are
  then concatenated along channels and fused by a 1x1 convolution, and the rest of the U-Net is 2D on the fused
  features. The encoder's skip connections at the per-slice levels are fused the same way (one 1x1 fusion per
  level; the fusion of the last per-slice level is the main path's fusion).
* "(ii) adds highway connections from the pre-fusion layer so that the prediction layer receives
  slice-sensitive auxiliary cues": the per-slice features of the last pre-fusion stage are reduced (shared 1x1
  convolution, ``highway_channels`` per slice), upsampled to the input resolution and concatenated, slice by
  slice, with the decoder's output in front of the prediction layer.

The fusion depth and the slice count are arguments (``fusion_depth``, ``context_slices``): the paper's values are not
yet verified. The encoder-decoder around them is a U-Net (our choice; the paper's backbone is not yet verified).
v2's early-stage multiplexing and slice-sensitive attention are not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from networks.segmentation.blocks import DecoderStage, EncoderStage, conv_norm_relu


class ThickenedUNet2D(nn.Module):
    """2D U-Net on ``2k+1`` slices with postponed fusion and highway connections (see the module docstring).

    Input ``(B, 2k+1, H, W)`` (H and W multiples of :attr:`divisor`), output logits ``(B, num_classes, H, W)``
    of the centre slice.

    Args:
        num_classes: Output classes, background included.
        context_slices: k (the input holds ``2k+1`` slices).
        channels: Channels of the encoder stages (each stage after the first halves the resolution).
        fusion_depth: Encoder stages applied to each slice separately before fusion (0: all slices fused at the
            first convolution, the plain 2D network).
        highway: Highway connections from the pre-fusion layer to the prediction layer (needs fusion_depth >= 1).
        highway_channels: Channels per slice carried by the highway connection.
    """

    input_kind = "slices"

    def __init__(self, num_classes: int, context_slices: int = 2, channels: Sequence[int] = (16, 32, 64, 128),
                 fusion_depth: int = 2, highway: bool = True, highway_channels: int = 4) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"channels must list at least two encoder stages, got {channels}")
        if not 0 <= fusion_depth <= len(channels):
            raise ValueError(f"fusion_depth must be 0 (fuse at the first convolution) to {len(channels)} (fuse at the "
                             f"bottleneck), got {fusion_depth}")
        if highway and fusion_depth == 0:
            raise ValueError("highway=true needs fusion_depth >= 1 (a pre-fusion layer), got fusion_depth=0")
        if context_slices < 0:
            raise ValueError(f"context_slices (k) must be >= 0, got {context_slices}")
        self.context_slices, self.num_slices = int(context_slices), 2 * int(context_slices) + 1
        self.fusion_depth, self.num_classes = int(fusion_depth), int(num_classes)
        self.divisor = 2 ** (len(channels) - 1)
        first_in = 1 if fusion_depth > 0 else self.num_slices
        self.encoder = nn.ModuleList(
            EncoderStage(first_in if i == 0 else channels[i - 1], c, 2, downsample=i > 0) for i, c in enumerate(channels))
        self.fusions = nn.ModuleList(
            conv_norm_relu(self.num_slices * channels[i], channels[i], 2, kernel_size=1) for i in range(fusion_depth))
        self.decoder = nn.ModuleList(
            DecoderStage(channels[i], channels[i - 1], channels[i - 1], 2) for i in range(len(channels) - 1, 0, -1))
        self.highway = (conv_norm_relu(channels[fusion_depth - 1], highway_channels, 2, kernel_size=1)
                        if highway else None)
        head_in = channels[0] + (self.num_slices * highway_channels if highway else 0)
        self.prediction = nn.Sequential(conv_norm_relu(head_in, channels[0], 2), nn.Conv2d(channels[0], num_classes, 1))

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        batch, depth, height, width = slices.shape
        if depth != self.num_slices:
            raise ValueError(f"slices: the network takes {self.num_slices} slices (context_slices="
                             f"{self.context_slices}) but got {depth}")
        if self.fusion_depth == 0:  # the plain 2D network: the slices are the first convolution's channels
            return self.fuse_and_decode([], slices)
        per_level = self.slice_features(slices.reshape(batch * depth, 1, height, width))
        return self.fuse_and_decode([f.reshape(batch, depth, *f.shape[1:]) for f in per_level])

    def slice_features(self, single_slices: torch.Tensor) -> list[torch.Tensor]:
        """The pre-fusion encoder stages on ``(N, 1, H, W)`` single slices: one ``(N, C_l, H_l, W_l)`` tensor per
        pre-fusion level. A slice's features do not depend on its neighbours, so whole-volume inference computes
        them once per slice and shares them between the ``2k+1`` stacks that contain the slice."""
        features, per_level = single_slices, []
        for level in range(self.fusion_depth):
            features = self.encoder[level](features)
            per_level.append(features)
        return per_level

    def fuse_and_decode(self, per_level: Sequence[torch.Tensor], slices: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the centre slices from per-slice features ``(B, 2k+1, C_l, H_l, W_l)`` of every pre-fusion
        level (:meth:`slice_features`): fusion of each level, the 2D rest of the U-Net, the highway cues.
        With ``fusion_depth = 0`` give the ``(B, 2k+1, H, W)`` ``slices`` instead."""
        skips = [self.fusions[level](features.flatten(1, 2)) for level, features in enumerate(per_level)]
        features = skips[-1] if skips else slices
        for level in range(self.fusion_depth, len(self.encoder)):
            features = self.encoder[level](features)
            skips.append(features)
        out = skips[-1]
        for stage, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            out = stage(out, skip)
        if self.highway is not None and per_level:
            pre_fusion = per_level[-1]
            cues = self.highway(pre_fusion.flatten(0, 1))
            cues = cues.reshape(pre_fusion.shape[0], pre_fusion.shape[1] * cues.shape[1], *cues.shape[2:])
            if cues.shape[-2:] != out.shape[-2:]:
                cues = F.interpolate(cues, size=out.shape[-2:], mode="bilinear", align_corners=False)
            out = torch.cat([out, cues], dim=1)
        return self.prediction(out)


def thickened_unet2d(num_classes: int, context_slices: int = 2, channels: Sequence[int] = (16, 32, 64, 128),
                     fusion_depth: int = 2, highway_channels: int = 4) -> ThickenedUNet2D:
    """The thickened 2D network: postponed fusion and highway connections (arXiv:1904.01150)."""
    return ThickenedUNet2D(num_classes, context_slices, channels, fusion_depth, True, highway_channels)


def plain_unet2d(num_classes: int, context_slices: int = 2,
                 channels: Sequence[int] = (16, 32, 64, 128)) -> ThickenedUNet2D:
    """The baseline the paper improves on: the same U-Net with all 2k+1 slices fused at the first convolution."""
    return ThickenedUNet2D(num_classes, context_slices, channels, fusion_depth=0, highway=False)
