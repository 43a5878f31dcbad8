"""U-Net building blocks of the thickened and plain 2D networks (dimension given as ``dims``)."""

from __future__ import annotations

import torch
from torch import nn

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
UP = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def conv_norm_relu(in_channels: int, out_channels: int, dims: int, kernel_size: int = 3) -> nn.Sequential:
    """Convolution (no bias), batch normalisation, ReLU."""
    return nn.Sequential(CONV[dims](in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
                         NORM[dims](out_channels), nn.ReLU(inplace=True))


class DoubleConv(nn.Sequential):
    """Two 3x3(x3) conv-BN-ReLU layers: one U-Net stage."""

    def __init__(self, in_channels: int, out_channels: int, dims: int) -> None:
        super().__init__(conv_norm_relu(in_channels, out_channels, dims), conv_norm_relu(out_channels, out_channels, dims))


class EncoderStage(nn.Sequential):
    """A U-Net encoder stage: 2x max pooling (except the first stage) then :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, dims: int, downsample: bool) -> None:
        layers = [POOL[dims](2)] if downsample else []
        super().__init__(*layers, DoubleConv(in_channels, out_channels, dims))


class DecoderStage(nn.Module):
    """A U-Net decoder stage: 2x transposed-convolution upsampling, concatenation with the skip, DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, dims: int) -> None:
        super().__init__()
        self.up = UP[dims](in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(out_channels + skip_channels, out_channels, dims)

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(features), skip], dim=1))
